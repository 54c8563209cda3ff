//! The README's run command as a newcomer types it: `testenv/serve` with no
//! KUBECONFIG starts its own local cluster, and the whole journey works in
//! Chromium — an admin creates a namespace and adds a member, the student
//! saves the robot credential the terminal printed, registers and deploys
//! add-two, and sees it ready with an address that answers.

use std::{
    os::unix::process::CommandExt,
    path::PathBuf,
    process::{Command, Stdio},
    time::Duration,
};

use crate::helpers::{
    alone, berth_sa::repo_root, browser, browser::Browser, cluster::eventually, unique,
};

const BASE: &str = "http://localhost:8080";
const STUDENT: &str = "student@purdue.edu";

/// `testenv/serve`, started as the README says, in a process group of its
/// own so the test can ^C it like a person would.
struct Serve {
    child: std::process::Child,
    out: PathBuf,
    _dir: tempfile::TempDir,
}

/// A test that fails half-way still stops the world it started (and frees
/// port 8080 for the next run).
impl Drop for Serve {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.interrupt();
        }
    }
}

impl Serve {
    /// Stops it as a terminal would, and returns the exit status: ^C
    /// (SIGINT), or SIGTERM where SIGINT is ignored — a shell that starts a
    /// background job (a CI runner may) leaves SIGINT ignored in everything
    /// below it, and a script cannot trap a signal ignored at its start.
    /// Whatever is left after a minute is killed, so a test never hangs here.
    fn interrupt(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        for (signal, grace) in [("-INT", 20), ("-TERM", 40), ("-KILL", 5)] {
            let _ = Command::new("kill").args([signal, &pid]).status();
            for _ in 0..grace * 10 {
                if let Ok(Some(status)) = self.child.try_wait() {
                    return status;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        self.child.wait().expect("waiting for testenv/serve")
    }

    fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = dir.path().join("serve.out");
        let log = std::fs::File::create(&out).expect("output file");
        let mut command = Command::new(repo_root().join("testenv/serve"));
        command
            .current_dir(repo_root())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .process_group(0)
            .env_remove("KUBECONFIG")
            // The repository's ./data stays the developer's own.
            .env("BERTH_DATABASE", dir.path().join("berth.db"));
        for (key, _) in std::env::vars() {
            if key.starts_with("TESTENV_") || key.starts_with("BERTH_") && key != "BERTH_DATABASE" {
                command.env_remove(key);
            }
        }
        let child = command.spawn().expect("starting testenv/serve");
        Self {
            child,
            out,
            _dir: dir,
        }
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    /// The value printed after `label` on a line of the terminal.
    fn printed(&self, label: &str) -> String {
        self.output()
            .lines()
            .find_map(|l| l.trim().strip_prefix(label).map(|v| v.trim().to_owned()))
            .unwrap_or_else(|| panic!("the terminal says {label}: {}", self.output()))
    }

    /// ^C, then everything it started is gone.
    fn stop(mut self) -> String {
        let status = self.interrupt();
        // testenv/run answers ^C (or TERM) by stopping everything and
        // exiting as the shell reports that signal.
        assert!(
            matches!(status.code(), Some(130 | 143)),
            "{status:?}: {}",
            self.output()
        );
        self.output()
    }
}

#[tokio::test]
async fn a_newcomer_finishes_the_journey_with_the_readme_run_command() {
    // A second cluster on the same two cores: no Berth of another test runs
    // meanwhile (as when this was a test binary of its own).
    let _alone = alone().await;
    let serve = Serve::start();
    let http = browser();
    eventually(
        Duration::from_secs(900),
        "testenv/serve is ready",
        || async {
            let ready = http.get(format!("{BASE}/readyz")).send().await.ok()?;
            (ready.status() == reqwest::StatusCode::OK).then_some(())
        },
    )
    .await;
    let robot = serve.printed("robot account:");
    let token = serve.printed("token:");
    let image = serve
        .printed("an image in it:")
        .split_whitespace()
        .next()
        .expect("an image reference")
        .to_owned();
    let campus = serve
        .output()
        .lines()
        .find_map(|l| {
            l.split_once("ip netns exec ")
                .map(|(_, rest)| rest.to_owned())
        })
        .and_then(|rest| rest.split_whitespace().next().map(str::to_owned))
        .expect("the terminal says where addresses live");
    let ns = unique("cs101");

    let browser = Browser::start().await;
    // The admin creates the namespace and adds the student.
    browser.sign_in(BASE, "admin@purdue.edu", true).await;
    browser.goto(&format!("{BASE}/admin/namespaces/new")).await;
    browser.fill("#name", &ns).await;
    browser
        .fill("#description", "CS 101, tried by a newcomer")
        .await;
    browser
        .click("form[action='/admin/namespaces'] button[type=submit]")
        .await;
    let page = browser
        .wait_for_url(&format!("{BASE}/admin/namespaces/{ns}"))
        .await;
    assert_eq!(
        page,
        format!("{BASE}/admin/namespaces/{ns}"),
        "{}",
        browser.source().await
    );
    browser.fill("#email", STUDENT).await;
    browser
        .click(&format!(
            "form[action='/admin/namespaces/{ns}/members'] button[type=submit]"
        ))
        .await;
    browser
        .wait_for_source("the member listed", |html| {
            html.contains(&format!("<td>{STUDENT}</td>"))
        })
        .await;
    browser.click(".site-header form button").await;
    browser.wait_for_url(&format!("{BASE}/auth/login")).await;

    // The student saves the robot credential the terminal printed; the local
    // registry is the one offered.
    browser.sign_in(BASE, STUDENT, false).await;
    browser
        .goto(&format!("{BASE}/namespaces/{ns}/registry"))
        .await;
    let registry = image.split('/').next().expect("registry host").to_owned();
    assert!(
        browser
            .source()
            .await
            .contains(&format!("value=\"{registry}\"")),
        "the local registry is offered by default"
    );
    browser.fill("#robot", &robot).await;
    browser.fill("#token", &token).await;
    browser
        .click("form[action$='/registry'] button[type=submit]")
        .await;
    let html = browser
        .wait_for_source("the saved credential", |html| {
            html.contains(&format!("<code>{robot}</code>")) || html.contains("Saved")
        })
        .await;
    assert!(!html.contains(&token), "the token is not shown again");

    // Register add-two and deploy it with the preset.
    browser
        .goto(&format!("{BASE}/namespaces/{ns}/images"))
        .await;
    browser.fill("#reference", &image).await;
    browser
        .click("form[action$='/images'] button[type=submit]")
        .await;
    let image_page = browser
        .wait_for_url(&format!("{BASE}/namespaces/{ns}/images/"))
        .await;
    let image_id = image_page.rsplit('/').next().unwrap_or_default().to_owned();
    assert!(
        !image_id.is_empty() && image_id.chars().all(|c| c.is_ascii_digit()),
        "registered: {image_page}\n{}",
        browser.source().await
    );
    // The image page's button opens the deploy form with the image chosen.
    let chosen = format!("{BASE}/namespaces/{ns}/workloads/new?image={image_id}");
    browser
        .click(&format!("a[href$='/workloads/new?image={image_id}']"))
        .await;
    assert_eq!(browser.wait_for_url(&chosen).await, chosen);
    let form = browser.source().await;
    assert!(
        form.contains(&format!("<option value=\"{image_id}\" selected")),
        "{form}"
    );
    browser
        .goto(&format!(
            "{BASE}/namespaces/{ns}/workloads/new?preset=add-two&image={image_id}"
        ))
        .await;
    browser.click("button[value=deploy]").await;
    let workload = format!("{BASE}/namespaces/{ns}/workloads/add-two");
    assert_eq!(browser.wait_for_url(&workload).await, workload);

    // Ready, with an address from the campus pool, shown on the page.
    let address = eventually(
        Duration::from_secs(120),
        "ready with an address",
        || async {
            browser.goto(&workload).await;
            let html = browser.source().await;
            if !html.contains("1 of 1 pods") {
                return None;
            }
            let start = html.find("<code>10.250.")? + "<code>".len();
            let end = start + html[start..].find('<')?;
            Some(html[start..end].to_owned())
        },
    )
    .await;
    if let Ok(dir) = std::env::var("BERTH_SCREENSHOT_DIR") {
        let _ = std::fs::write(
            format!("{dir}/newcomer-workload.png"),
            browser.screenshot().await,
        );
    }
    // The page shows the address once MetalLB has given it; kube-proxy on
    // the node may take a moment more to route it (a refused connection
    // until then, as a student reloading would see).
    eventually(Duration::from_secs(60), "the address routed", || async {
        http.get(format!("http://{address}/"))
            .send()
            .await
            .ok()
            .map(|_| ())
    })
    .await;
    // The student opens the address in the browser, as the page offers…
    browser.goto(&format!("http://{address}/")).await;
    let index = browser.source().await;
    assert!(
        index.contains("add-two") && index.contains("/add_two"),
        "add-two answers at its address: {index}"
    );
    // …and calls it as the terminal and the page say, from this machine and
    // from the local campus network.
    let answer = http
        .post(format!("http://{address}/add_two"))
        .json(&serde_json::json!({"num": 123}))
        .send()
        .await
        .expect("add-two answers");
    assert_eq!(
        answer.json::<serde_json::Value>().await.expect("JSON"),
        serde_json::json!({"output": 125})
    );
    let answer = Command::new("ip")
        .args(["netns", "exec", &campus, "curl", "-sS", "--max-time", "5"])
        .args([
            "-H",
            "Content-Type: application/json",
            "-d",
            r#"{"num": 123}"#,
        ])
        .arg(format!("http://{address}/add_two"))
        .output()
        .expect("curl from the campus network");
    assert_eq!(
        String::from_utf8_lossy(&answer.stdout),
        r#"{"output":125}"#,
        "{}",
        String::from_utf8_lossy(&answer.stderr)
    );
    if let Ok(dir) = std::env::var("BERTH_SCREENSHOT_DIR") {
        let _ = std::fs::write(
            format!("{dir}/newcomer-address.png"),
            browser.screenshot().await,
        );
    }
    browser.quit().await;

    // ^C stops Berth and the local cluster with it.
    let output = serve.stop();
    let netns = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    assert!(
        !String::from_utf8_lossy(&netns.stdout).contains(&campus),
        "the local cluster's network namespaces are gone: {output}"
    );
    let routes = Command::new("ip")
        .args(["-4", "route", "show", "10.250.1.0/24"])
        .output()
        .expect("ip route");
    assert!(
        routes.stdout.is_empty(),
        "and the host's route to its addresses"
    );
}
