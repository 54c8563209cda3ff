//! The deploy form as the browser sends it, its presets, and its parsing into
//! a validated [`WorkloadSpec`] with every problem keyed by field.

use k8s_openapi::{
    api::{apps::v1::Deployment, core::v1::Service},
    apimachinery::pkg::{api::resource::Quantity, util::intstr::IntOrString},
};
use serde::{Deserialize, Serialize};

use super::spec::{
    ClaimSource, Exposure, FieldErrors, PortMapping, Protocol, Resources, Volume, WorkloadSpec,
    check_dns_label, check_mount_path, check_quantity, check_workload_name, parse_env, parse_port,
    split_command,
};
use crate::registries::reference;

/// Most replicas the form accepts; more is an admin's conversation, not a typo.
pub const MAX_REPLICAS: i32 = 20;

/// The deploy form's fields, exactly as posted (all text, so a bad value can
/// be shown back as typed).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default)]
pub struct DeployForm {
    /// Workload name.
    pub name: String,
    /// `registered` or `public`.
    pub image_source: ImageSource,
    /// Id of a registered image (when `image_source` is `registered`).
    pub image_id: String,
    /// A public image reference (when `image_source` is `public`).
    pub image: String,
    /// Number of pods.
    pub replicas: String,
    /// Port the container listens on (may be empty).
    pub container_port: String,
    /// Command override, shell-style.
    pub command: String,
    /// Arguments override, shell-style.
    pub args: String,
    /// `NAME=value` lines.
    pub env: String,
    /// CPU request.
    pub cpu_request: String,
    /// CPU limit.
    pub cpu_limit: String,
    /// Memory request.
    pub memory_request: String,
    /// Memory limit.
    pub memory_limit: String,
    /// `none`, `existing` or `new`.
    pub volume: VolumeChoice,
    /// Name of an existing claim.
    pub existing_claim: String,
    /// Size of a new claim.
    pub volume_size: String,
    /// Storage class of a new claim (empty: the cluster default).
    pub storage_class: String,
    /// Where the volume is mounted.
    pub mount_path: String,
    /// `none`, `cluster`, `campus` or `public`.
    pub exposure: String,
    /// Port on the address.
    pub published_port: String,
    /// Port in the container (defaults to the container port).
    pub target_port: String,
    /// `TCP` or `UDP`.
    pub protocol: String,
}

/// Where the image comes from (`name="image_source"`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageSource {
    /// One of the namespace's registered images.
    Registered,
    /// Any image reference, pulled without credentials.
    Public,
    /// No choice, or a value the form does not offer: parsing asks for one.
    #[default]
    #[serde(other)]
    Unchosen,
}

/// Which volume the workload mounts (`name="volume"`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VolumeChoice {
    /// No volume (also a form without the field, or an empty value).
    #[default]
    #[serde(alias = "")]
    None,
    /// An existing claim, by name.
    Existing,
    /// A new claim of a size.
    New,
    /// A value the form does not offer: parsing asks for a choice.
    #[serde(other)]
    Unknown,
}

/// Which image the form picked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageChoice {
    /// A registered image (its pull Secret is handled), by id.
    Registered(i64),
    /// Any other image, pulled without credentials.
    Public(String),
}

/// A parsed deploy form: the spec (its `image` is filled in once a
/// registered image is looked up) and the image choice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deploy {
    /// Everything but the resolved image.
    pub spec: WorkloadSpec,
    /// The image to resolve.
    pub image: ImageChoice,
}

/// Starting points that fill the form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// The add-two demo: port 5000 published on 80.
    AddTwo,
    /// JupyterLab on a persistent volume at /workspace.
    Jupyter,
}

impl Preset {
    /// Parses the `preset` query value.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "add-two" => Some(Self::AddTwo),
            "jupyter" => Some(Self::Jupyter),
            _ => None,
        }
    }
}

impl DeployForm {
    /// An empty form with sensible defaults (one replica, exposed on campus).
    pub fn blank() -> Self {
        Self {
            image_source: ImageSource::Registered,
            replicas: "1".into(),
            volume: VolumeChoice::None,
            mount_path: "/data".into(),
            volume_size: "1Gi".into(),
            exposure: "campus".into(),
            protocol: "TCP".into(),
            ..Self::default()
        }
    }

    /// The form filled in for a preset; `namespace` names the JupyterLab base URL.
    pub fn preset(preset: Preset, namespace: &str) -> Self {
        match preset {
            Preset::AddTwo => Self {
                name: "add-two".into(),
                container_port: "5000".into(),
                published_port: "80".into(),
                target_port: "5000".into(),
                cpu_request: "100m".into(),
                memory_request: "64Mi".into(),
                memory_limit: "128Mi".into(),
                ..Self::blank()
            },
            Preset::Jupyter => Self {
                name: "jupyter".into(),
                image_source: ImageSource::Public,
                image: "quay.io/jupyter/base-notebook:latest".into(),
                container_port: "8888".into(),
                published_port: "80".into(),
                target_port: "8888".into(),
                command: "start-notebook.py".into(),
                // The token is printed in the logs, which Berth shows.
                args: format!(
                    "--ServerApp.base_url=/{namespace}/jupyter --ServerApp.root_dir=/workspace"
                ),
                cpu_request: "500m".into(),
                memory_request: "1Gi".into(),
                memory_limit: "2Gi".into(),
                volume: VolumeChoice::New,
                volume_size: "10Gi".into(),
                mount_path: "/workspace".into(),
                ..Self::blank()
            },
        }
    }

    /// A form that describes a live workload Berth has no kept form for (its
    /// annotation was removed by hand): the image, port, command, environment,
    /// resources and volume of its container, and who may reach it from its
    /// Service, so editing it neither forgets the address nor deletes the
    /// Service. `public_pool` is the annotation (key, value) of public exposure.
    pub fn from_live(
        deployment: &Deployment,
        service: Option<&Service>,
        public_pool: &(String, String),
    ) -> Self {
        let pod = deployment
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref());
        let container = pod.and_then(|p| p.containers.first());
        let mut form = Self {
            name: deployment.metadata.name.clone().unwrap_or_default(),
            replicas: deployment
                .spec
                .as_ref()
                .and_then(|s| s.replicas)
                .unwrap_or(1)
                .to_string(),
            image_source: ImageSource::Public,
            image: container.and_then(|c| c.image.clone()).unwrap_or_default(),
            exposure: "none".into(),
            mount_path: String::new(),
            volume_size: String::new(),
            ..Self::blank()
        };
        if let Some(c) = container {
            if let Some(port) = c.ports.iter().flatten().next() {
                form.container_port = port.container_port.to_string();
            }
            form.command = shell_words::join(c.command.iter().flatten());
            form.args = shell_words::join(c.args.iter().flatten());
            form.env = c
                .env
                .iter()
                .flatten()
                .filter_map(|e| e.value.as_ref().map(|v| format!("{}={v}", e.name)))
                .collect::<Vec<_>>()
                .join("\n");
            let resources = c.resources.clone().unwrap_or_default();
            let pick = |map: &Option<std::collections::BTreeMap<String, Quantity>>, key: &str| {
                map.as_ref()
                    .and_then(|m| m.get(key))
                    .map(|q| q.0.clone())
                    .unwrap_or_default()
            };
            form.cpu_request = pick(&resources.requests, "cpu");
            form.cpu_limit = pick(&resources.limits, "cpu");
            form.memory_request = pick(&resources.requests, "memory");
            form.memory_limit = pick(&resources.limits, "memory");
            let claim = pod
                .and_then(|p| p.volumes.as_ref())
                .into_iter()
                .flatten()
                .find_map(|v| {
                    let claim = v.persistent_volume_claim.as_ref()?;
                    let mount = c
                        .volume_mounts
                        .iter()
                        .flatten()
                        .find(|m| m.name == v.name)?;
                    Some((claim.claim_name.clone(), mount.mount_path.clone()))
                });
            if let Some((claim, mount_path)) = claim {
                // Kept as an existing claim: its size is not Berth's to re-apply.
                form.volume = VolumeChoice::Existing;
                form.existing_claim = claim;
                form.mount_path = mount_path;
            }
        }
        if let Some(spec) = service.and_then(|s| s.spec.as_ref()) {
            let public = service
                .and_then(|s| s.metadata.annotations.as_ref())
                .and_then(|a| a.get(&public_pool.0))
                .is_some_and(|v| *v == public_pool.1);
            form.exposure = match spec.type_.as_deref() {
                Some("LoadBalancer") if public => "public",
                Some("LoadBalancer") => "campus",
                _ => "cluster",
            }
            .into();
            if let Some(port) = spec.ports.iter().flatten().next() {
                form.published_port = port.port.to_string();
                form.target_port = match &port.target_port {
                    Some(IntOrString::Int(n)) => n.to_string(),
                    Some(IntOrString::String(s)) => s.clone(),
                    None => port.port.to_string(),
                };
                form.protocol = port.protocol.clone().unwrap_or_else(|| "TCP".into());
            }
        }
        form
    }

    /// Validates every field; on failure, each message keyed by its field.
    pub fn parse(
        &self,
        namespace: &str,
        owner: &str,
        default_registry: &str,
    ) -> Result<Deploy, FieldErrors> {
        let mut errors = super::spec::field_errors();
        let name = self.name.trim().to_owned();
        if let Err(e) = check_workload_name(&name) {
            errors.add("name", e);
        }

        let image = match self.image_source {
            ImageSource::Registered => match self.image_id.trim().parse::<i64>() {
                Ok(id) => Some(ImageChoice::Registered(id)),
                Err(_) => {
                    errors.add(
                        "image_id",
                        "Pick one of your registered images, or choose a public image.",
                    );
                    None
                }
            },
            ImageSource::Public => match reference::parse(&self.image, default_registry) {
                Ok(image) => Some(ImageChoice::Public(image.to_string())),
                Err(e) => {
                    errors.add("image", e.to_string());
                    None
                }
            },
            ImageSource::Unchosen => {
                errors.add("image_source", "Choose a registered or a public image.");
                None
            }
        };

        let replicas = match self.replicas.trim().parse::<i32>() {
            Ok(n) if (0..=MAX_REPLICAS).contains(&n) => n,
            _ => {
                errors.add(
                    "replicas",
                    format!("Use a whole number from 0 to {MAX_REPLICAS}."),
                );
                0
            }
        };

        let container_port = if self.container_port.trim().is_empty() {
            None
        } else {
            match parse_port(&self.container_port) {
                Ok(p) => Some(p),
                Err(e) => {
                    errors.add("container_port", e);
                    None
                }
            }
        };

        let command = split_command(&self.command).unwrap_or_else(|e| {
            errors.add("command", e);
            Vec::new()
        });
        let args = split_command(&self.args).unwrap_or_else(|e| {
            errors.add("args", e);
            Vec::new()
        });
        let env = parse_env(&self.env).unwrap_or_else(|e| {
            errors.add("env", e);
            Vec::new()
        });

        let mut quantity = |field: &'static str, value: &str| -> Option<String> {
            let value = value.trim();
            if value.is_empty() {
                return None;
            }
            match check_quantity(value) {
                Ok(()) => Some(value.to_owned()),
                Err(e) => {
                    errors.add(field, e);
                    None
                }
            }
        };
        let resources = Resources {
            cpu_request: quantity("cpu_request", &self.cpu_request),
            cpu_limit: quantity("cpu_limit", &self.cpu_limit),
            memory_request: quantity("memory_request", &self.memory_request),
            memory_limit: quantity("memory_limit", &self.memory_limit),
        };
        let volume_size = quantity("volume_size", &self.volume_size);

        let volume = match self.volume {
            VolumeChoice::None => None,
            kind @ (VolumeChoice::Existing | VolumeChoice::New) => {
                let mount_path = self.mount_path.trim().to_owned();
                if let Err(e) = check_mount_path(&mount_path) {
                    errors.add("mount_path", e);
                }
                let claim = if kind == VolumeChoice::Existing {
                    let claim = self.existing_claim.trim().to_owned();
                    if let Err(e) = check_dns_label(&claim, 253) {
                        errors.add("existing_claim", e);
                    }
                    ClaimSource::Existing(claim)
                } else {
                    if volume_size.is_none() && !errors.has("volume_size") {
                        errors.add("volume_size", "Enter a size, like 10Gi.");
                    }
                    let class = self.storage_class.trim();
                    if !class.is_empty()
                        && let Err(e) = check_dns_label(class, 253)
                    {
                        errors.add("storage_class", e);
                    }
                    ClaimSource::New {
                        size: volume_size.clone().unwrap_or_default(),
                        storage_class: (!class.is_empty()).then(|| class.to_owned()),
                    }
                };
                Some(Volume { claim, mount_path })
            }
            VolumeChoice::Unknown => {
                errors.add("volume", "Choose no volume, an existing one, or a new one.");
                None
            }
        };

        let exposure = Exposure::parse(&self.exposure).unwrap_or_else(|| {
            errors.add("exposure", "Choose who may reach it.");
            Exposure::None
        });
        let ports = if exposure == Exposure::None {
            Vec::new()
        } else {
            let published = if self.published_port.trim().is_empty() {
                errors.add(
                    "published_port",
                    "Enter the port people reach it on, like 80 (add-two: 80).",
                );
                Err(())
            } else {
                parse_port(&self.published_port).map_err(|e| {
                    errors.add("published_port", e);
                })
            };
            let target_text = if self.target_port.trim().is_empty() {
                self.container_port.as_str()
            } else {
                self.target_port.as_str()
            };
            let target = if target_text.trim().is_empty() {
                errors.add(
                    "target_port",
                    "Enter the port the container listens on, here or as the container port (add-two: 5000).",
                );
                Err(())
            } else {
                parse_port(target_text).map_err(|e| {
                    errors.add("target_port", e);
                })
            };
            let protocol = match self.protocol.as_str() {
                "TCP" | "" => Protocol::Tcp,
                "UDP" => Protocol::Udp,
                _ => {
                    errors.add("protocol", "Choose TCP or UDP.");
                    Protocol::Tcp
                }
            };
            match (published, target) {
                (Ok(published), Ok(target)) => {
                    if container_port.is_some_and(|c| c != target) {
                        errors.add(
                            "target_port",
                            "The target port is where the container listens: make it the container port.",
                        );
                    }
                    vec![PortMapping {
                        published,
                        target,
                        protocol,
                    }]
                }
                _ => Vec::new(),
            }
        };

        if !errors.is_empty() {
            return Err(errors);
        }
        let Some(image) = image else {
            return Err(errors);
        };
        let public_image = match &image {
            ImageChoice::Public(reference) => reference.clone(),
            ImageChoice::Registered(_) => String::new(),
        };
        Ok(Deploy {
            spec: WorkloadSpec {
                namespace: namespace.to_owned(),
                name,
                image: public_image,
                pull_secret: None,
                replicas,
                container_port,
                command,
                args,
                env,
                resources,
                volume,
                exposure,
                ports,
                owner: owner.to_owned(),
            },
            image,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REGISTRY: &str = "geddes-registry.rcac.purdue.edu";

    fn add_two() -> DeployForm {
        DeployForm {
            image_id: "7".into(),
            ..DeployForm::preset(Preset::AddTwo, "cs101")
        }
    }

    #[test]
    fn image_and_volume_choices_keep_their_wire_values() {
        let read = |body: &str| serde_urlencoded::from_str::<DeployForm>(body).expect("reads");
        assert_eq!(
            read("image_source=registered").image_source,
            ImageSource::Registered
        );
        assert_eq!(
            read("image_source=public").image_source,
            ImageSource::Public
        );
        assert_eq!(read("image_source=ftp").image_source, ImageSource::Unchosen);
        assert_eq!(read("name=web").image_source, ImageSource::Unchosen);
        assert_eq!(read("volume=none").volume, VolumeChoice::None);
        assert_eq!(read("volume=").volume, VolumeChoice::None);
        assert_eq!(read("name=web").volume, VolumeChoice::None);
        assert_eq!(read("volume=existing").volume, VolumeChoice::Existing);
        assert_eq!(read("volume=new").volume, VolumeChoice::New);
        assert_eq!(read("volume=tape").volume, VolumeChoice::Unknown);

        // Values the form does not offer get the same messages as before.
        let errors = read("name=web&image_source=ftp&replicas=1&volume=tape&exposure=none")
            .parse("cs101", "s@purdue.edu", REGISTRY)
            .expect_err("refused");
        assert_eq!(
            errors.get("image_source"),
            Some("Choose a registered or a public image.")
        );
        assert_eq!(
            errors.get("volume"),
            Some("Choose no volume, an existing one, or a new one.")
        );

        // The form kept on a Deployment (JSON) carries the same words.
        let json = serde_json::to_value(DeployForm::blank()).expect("json");
        assert_eq!(json["image_source"], "registered");
        assert_eq!(json["volume"], "none");
        let back: DeployForm = serde_json::from_value(json).expect("reads back");
        assert_eq!(back, DeployForm::blank());
    }

    #[test]
    fn the_add_two_preset_parses_to_port_80_on_campus() {
        let deploy = add_two()
            .parse("cs101", "s@purdue.edu", REGISTRY)
            .expect("valid");
        assert_eq!(deploy.image, ImageChoice::Registered(7));
        let spec = deploy.spec;
        assert_eq!(spec.name, "add-two");
        assert_eq!(spec.container_port, Some(5000));
        assert_eq!(spec.exposure, Exposure::Campus);
        assert_eq!(
            spec.ports,
            vec![PortMapping {
                published: 80,
                target: 5000,
                protocol: Protocol::Tcp
            }]
        );
        assert_eq!(spec.resources.memory_limit.as_deref(), Some("128Mi"));
        assert!(spec.volume.is_none());
    }

    #[test]
    fn the_jupyter_preset_mounts_a_new_volume_at_workspace() {
        let deploy = DeployForm::preset(Preset::Jupyter, "cs101")
            .parse("cs101", "s@purdue.edu", REGISTRY)
            .expect("valid");
        assert_eq!(
            deploy.image,
            ImageChoice::Public("quay.io/jupyter/base-notebook:latest".into())
        );
        let volume = deploy.spec.volume.expect("a volume");
        assert_eq!(volume.mount_path, "/workspace");
        assert_eq!(
            volume.claim,
            ClaimSource::New {
                size: "10Gi".into(),
                storage_class: None
            }
        );
        assert_eq!(deploy.spec.container_port, Some(8888));
        assert_eq!(deploy.spec.args[0], "--ServerApp.base_url=/cs101/jupyter");
    }

    #[test]
    fn every_bad_field_gets_its_own_message() {
        let form = DeployForm {
            name: "Bad_Name".into(),
            image_source: ImageSource::Public,
            image: "nginx".into(),
            replicas: "-1".into(),
            container_port: "70000".into(),
            command: "sh -c 'unclosed".into(),
            env: "1BAD=x".into(),
            cpu_request: "lots".into(),
            memory_limit: "1GB".into(),
            volume: VolumeChoice::New,
            volume_size: "".into(),
            mount_path: "relative".into(),
            exposure: "campus".into(),
            published_port: "0".into(),
            target_port: "".into(),
            ..DeployForm::blank()
        };
        let errors = form
            .parse("cs101", "s@purdue.edu", REGISTRY)
            .expect_err("invalid");
        for field in [
            "name",
            "image",
            "replicas",
            "container_port",
            "command",
            "env",
            "cpu_request",
            "memory_limit",
            "volume_size",
            "mount_path",
            "published_port",
            "target_port",
        ] {
            assert!(errors.has(field), "{field} in {errors:?}");
        }
    }

    #[test]
    fn an_exposed_workload_without_a_published_port_is_asked_for_one() {
        let form = DeployForm {
            name: "web".into(),
            image_source: ImageSource::Public,
            image: "quay.io/example/web:1.0".into(),
            container_port: "5000".into(),
            exposure: "campus".into(),
            ..DeployForm::blank()
        };
        let errors = form
            .parse("cs101", "s@purdue.edu", REGISTRY)
            .expect_err("no published port");
        assert_eq!(errors.fields(), vec!["published_port"]);
        assert!(
            errors
                .get("published_port")
                .is_some_and(|m| m.starts_with("Enter the port people reach it on")),
            "{errors:?}"
        );
    }

    #[test]
    fn the_error_summary_follows_the_form_not_the_alphabet() {
        let form = DeployForm {
            name: "Bad_Name".into(),
            image_source: ImageSource::Public,
            image: "nginx".into(),
            replicas: "-1".into(),
            env: "1BAD=x".into(),
            memory_limit: "1GB".into(),
            cpu_request: "lots".into(),
            exposure: "campus".into(),
            published_port: "0".into(),
            volume: VolumeChoice::New,
            volume_size: "".into(),
            mount_path: "relative".into(),
            ..DeployForm::blank()
        };
        let errors = form
            .parse("cs101", "s@purdue.edu", REGISTRY)
            .expect_err("invalid");
        assert_eq!(
            errors.fields(),
            vec![
                "name",
                "image",
                "replicas",
                "env",
                "cpu_request",
                "memory_limit",
                "volume_size",
                "mount_path",
                "published_port",
                "target_port",
            ]
        );
        assert!(
            errors
                .get("target_port")
                .is_some_and(|m| m.starts_with("Enter the port the container listens on")),
            "{errors:?}"
        );
        let mut later = errors.clone();
        later.add("quota", "too much");
        later.add("name", "taken");
        assert_eq!(later.fields().first(), Some(&"name"));
        assert_eq!(later.fields().last(), Some(&"quota"));
        assert_eq!(later.get("name"), Some("taken"));
    }

    #[test]
    fn the_form_order_is_the_order_of_the_page() {
        let page = include_str!("../../../templates/workloads/deploy.html");
        let mut last = 0;
        for field in crate::workloads::spec::FORM_ORDER {
            let at = page
                .find(&format!("id=\"{field}\""))
                .or_else(|| page.find(&format!("(\"{field}\",")))
                .unwrap_or_else(|| panic!("{field} is not on the deploy page"));
            assert!(
                at > last,
                "{field} comes earlier on the page than FORM_ORDER says"
            );
            last = at;
        }
    }

    #[test]
    fn a_live_workload_without_its_kept_form_keeps_its_exposure_and_settings() {
        // What Berth builds from the add-two preset, read back without the form.
        let mut form = add_two();
        form.image_source = ImageSource::Public;
        form.image = "reg.example/cs101/add-two:1.0".into();
        form.exposure = "public".into();
        form.env = "MODE=demo\nGREETING=hi there".into();
        form.command = "python app.py".into();
        form.args = "--name 'two words'".into();
        form.volume = VolumeChoice::Existing;
        form.existing_claim = "shared".into();
        form.mount_path = "/data".into();
        let spec = form.parse("cs101", "s", REGISTRY).expect("valid").spec;
        let pool = ("metallb.io/address-pool".to_owned(), "public".to_owned());
        let settings = crate::workloads::build::ExposeSettings {
            public_annotation: pool.clone(),
        };
        let deployment = crate::workloads::build::deployment(&spec);
        let service = crate::workloads::build::service(&spec, &settings).expect("a Service");
        let live = DeployForm::from_live(&deployment, Some(&service), &pool);
        let again = live
            .parse("cs101", "s", REGISTRY)
            .expect("the live form parses")
            .spec;
        assert_eq!(again, spec, "{live:?}");
        assert_eq!(live.exposure, "public");
        // No Service: nobody may reach it.
        let live = DeployForm::from_live(&deployment, None, &pool);
        assert_eq!(live.exposure, "none");
    }

    #[test]
    fn target_port_defaults_to_the_container_port_and_must_match_it() {
        let mut form = add_two();
        form.target_port = String::new();
        let spec = form
            .parse("cs101", "s@purdue.edu", REGISTRY)
            .expect("valid")
            .spec;
        assert_eq!(spec.ports[0].target, 5000);
        form.target_port = "6000".into();
        let errors = form
            .parse("cs101", "s@purdue.edu", REGISTRY)
            .expect_err("mismatch");
        assert!(errors.has("target_port"));
    }

    #[test]
    fn no_exposure_means_no_ports_and_udp_is_kept() {
        let mut form = add_two();
        form.exposure = "none".into();
        form.published_port = "nonsense".into();
        assert!(
            form.parse("cs101", "s", REGISTRY)
                .expect("valid")
                .spec
                .ports
                .is_empty()
        );
        form.exposure = "cluster".into();
        form.published_port = "53".into();
        form.protocol = "UDP".into();
        let spec = form.parse("cs101", "s", REGISTRY).expect("valid").spec;
        assert_eq!(spec.ports[0].protocol, Protocol::Udp);
        assert_eq!(spec.exposure, Exposure::Cluster);
    }
}
