/* The sandbox ("pause") container of the test world's real node: it holds a
 * Pod's namespaces open and does nothing else. The usual image cannot be
 * downloaded here, so testenv builds this one (static, a few KiB) and imports
 * it into the node's containerd. As PID 1 of a Pod it reaps orphans and exits
 * cleanly on SIGTERM/SIGINT. */
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void stop(int sig) { (void)sig; _exit(0); }

static void reap(int sig) {
    (void)sig;
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
}

int main(void) {
    struct sigaction term = {.sa_handler = stop};
    struct sigaction child = {.sa_handler = reap, .sa_flags = SA_NOCLDSTOP};
    sigaction(SIGTERM, &term, NULL);
    sigaction(SIGINT, &term, NULL);
    sigaction(SIGCHLD, &child, NULL);
    for (;;) pause();
}
