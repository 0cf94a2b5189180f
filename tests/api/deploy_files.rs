//! The deploy files start what they deploy. No Kubernetes runs here, so the manifests are read
//! as the cluster would read them: each container's environment is assembled from its
//! ConfigMaps, Secrets (the shapes in `secrets.example.yaml`) and literal values, and handed
//! to the binary's own configuration loader, which must accept it; the key files it names must
//! be mounted from Secret keys that exist; the event spool must sit on a writable volume that
//! outlives the pod. And the Dockerfile's runtime stage must install every shared library the
//! binaries link.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_yaml_ng::Value;
use shared::config::ConfigSource;

fn deploy_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

/// Every document of a YAML file.
fn documents(path: &Path) -> Vec<Value> {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|document| {
            <Value as serde::Deserialize>::deserialize(document)
                .unwrap_or_else(|error| panic!("{}: {error}", path.display()))
        })
        .filter(|document| !document.is_null())
        .collect()
}

fn text<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(value, |value, key| value.get(*key))?
        .as_str()
}

fn list<'a>(value: &'a Value, key: &str) -> &'a [Value] {
    value
        .get(key)
        .and_then(Value::as_sequence)
        .map_or(&[], Vec::as_slice)
}

/// What the kustomization applies, and the Secrets an operator creates beside it.
struct Deployment {
    objects: Vec<Value>,
    /// ConfigMap and Secret name → key → value.
    config_maps: BTreeMap<String, BTreeMap<String, String>>,
    secrets: BTreeMap<String, BTreeMap<String, String>>,
}

fn string_map(value: Option<&Value>) -> BTreeMap<String, String> {
    value
        .and_then(Value::as_mapping)
        .map(|map| {
            map.iter()
                .map(|(key, value)| {
                    let value = match value {
                        Value::String(text) => text.clone(),
                        other => panic!("ConfigMap and Secret values are strings: {other:?}"),
                    };
                    (key.as_str().unwrap().to_owned(), value)
                })
                .collect()
        })
        .unwrap_or_default()
}

fn load() -> Deployment {
    let k8s = deploy_dir().join("k8s");
    let kustomization = &documents(&k8s.join("kustomization.yaml"))[0];
    let objects: Vec<Value> = list(kustomization, "resources")
        .iter()
        .flat_map(|resource| documents(&k8s.join(resource.as_str().unwrap())))
        .collect();
    let named = |objects: &[Value], kind: &str, field: &str| {
        objects
            .iter()
            .filter(|object| text(object, &["kind"]) == Some(kind))
            .map(|object| {
                (
                    text(object, &["metadata", "name"]).unwrap().to_owned(),
                    string_map(object.get(field)),
                )
            })
            .collect::<BTreeMap<_, _>>()
    };
    let config_maps = named(&objects, "ConfigMap", "data");
    let secrets = named(
        &documents(&k8s.join("secrets.example.yaml")),
        "Secret",
        "stringData",
    );
    Deployment {
        objects,
        config_maps,
        secrets,
    }
}

/// One container of a workload, as the cluster would run it.
struct Container<'a> {
    workload: &'a Value,
    spec: &'a Value,
    label: String,
}

impl Deployment {
    fn containers(&self) -> Vec<Container<'_>> {
        let mut found = Vec::new();
        for workload in &self.objects {
            let kind = text(workload, &["kind"]).unwrap_or_default();
            if !["Deployment", "StatefulSet", "Job", "DaemonSet"].contains(&kind) {
                continue;
            }
            let pod = &workload["spec"]["template"]["spec"];
            for field in ["initContainers", "containers"] {
                for spec in list(pod, field) {
                    found.push(Container {
                        workload,
                        spec,
                        label: format!(
                            "{kind} {} container {}",
                            text(workload, &["metadata", "name"]).unwrap(),
                            text(spec, &["name"]).unwrap()
                        ),
                    });
                }
            }
        }
        found
    }

    /// The container's environment: its ConfigMaps' keys, then its own entries (which win).
    fn environment(&self, container: &Container) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        for source in list(container.spec, "envFrom") {
            let name = text(source, &["configMapRef", "name"])
                .unwrap_or_else(|| panic!("{}: only ConfigMaps in envFrom", container.label));
            let data = self
                .config_maps
                .get(name)
                .unwrap_or_else(|| panic!("{}: ConfigMap {name} is not applied", container.label));
            env.extend(data.clone());
        }
        for entry in list(container.spec, "env") {
            let name = text(entry, &["name"]).unwrap().to_owned();
            let value = if let Some(value) = text(entry, &["value"]) {
                value.to_owned()
            } else if let Some(secret) = entry
                .get("valueFrom")
                .and_then(|from| from.get("secretKeyRef"))
            {
                self.key_of(&self.secrets, secret, "Secret", container)
            } else if let Some(map) = entry
                .get("valueFrom")
                .and_then(|from| from.get("configMapKeyRef"))
            {
                self.key_of(&self.config_maps, map, "ConfigMap", container)
            } else {
                panic!("{}: {name} has no value", container.label)
            };
            env.insert(name, value);
        }
        env
    }

    fn key_of(
        &self,
        of: &BTreeMap<String, BTreeMap<String, String>>,
        reference: &Value,
        kind: &str,
        container: &Container,
    ) -> String {
        let (name, key) = (
            text(reference, &["name"]).unwrap(),
            text(reference, &["key"]).unwrap(),
        );
        of.get(name)
            .and_then(|data| data.get(key))
            .unwrap_or_else(|| panic!("{}: {kind} {name} has no key {key}", container.label))
            .clone()
    }

    /// The volume that holds `path` in the container (its mount and the pod's or the claim
    /// template's volume), and whether the mount is writable.
    fn volume_of<'a>(&self, container: &Container<'a>, path: &Path) -> (&'a Value, bool) {
        let mount = list(container.spec, "volumeMounts")
            .iter()
            .filter(|mount| path.starts_with(text(mount, &["mountPath"]).unwrap()))
            .max_by_key(|mount| text(mount, &["mountPath"]).unwrap().len())
            .unwrap_or_else(|| {
                panic!(
                    "{}: {} is on no volume (the root file system is read-only)",
                    container.label,
                    path.display()
                )
            });
        let name = text(mount, &["name"]).unwrap();
        let writable = !mount
            .get("readOnly")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let pod = &container.workload["spec"]["template"]["spec"];
        let volume = list(pod, "volumes")
            .iter()
            .chain(list(&container.workload["spec"], "volumeClaimTemplates"))
            .find(|volume| {
                text(volume, &["name"]).or_else(|| text(volume, &["metadata", "name"]))
                    == Some(name)
            })
            .unwrap_or_else(|| panic!("{}: no volume {name}", container.label));
        (volume, writable)
    }

    /// `path` in the container is the file of a key of an existing Secret.
    fn assert_secret_file(&self, container: &Container, path: &Path) {
        let (volume, _) = self.volume_of(container, path);
        let secret = volume.get("secret").unwrap_or_else(|| {
            panic!(
                "{}: {} is not from a Secret",
                container.label,
                path.display()
            )
        });
        let name = text(secret, &["secretName"]).unwrap();
        let file = path.file_name().unwrap().to_str().unwrap();
        let key = list(secret, "items")
            .iter()
            .find(|item| text(item, &["path"]) == Some(file))
            .and_then(|item| text(item, &["key"]))
            .unwrap_or(file);
        assert!(
            self.secrets
                .get(name)
                .is_some_and(|data| data.contains_key(key)),
            "{}: {} is key {key} of Secret {name}, which secrets.example.yaml does not define",
            container.label,
            path.display()
        );
    }

    /// `path` in the container is on a writable volume that outlives the pod.
    fn assert_persistent(&self, container: &Container, path: &Path) {
        assert!(
            path.is_absolute(),
            "{}: {} is relative",
            container.label,
            path.display()
        );
        let (volume, writable) = self.volume_of(container, path);
        assert!(
            writable,
            "{}: {} is read-only",
            container.label,
            path.display()
        );
        let persistent = volume.get("persistentVolumeClaim").is_some()
            || volume
                .get("spec")
                .is_some_and(|spec| spec.get("accessModes").is_some());
        assert!(
            persistent,
            "{}: {} is lost with the pod ({volume:?})",
            container.label,
            path.display()
        );
    }
}

/// Settings the processes read from their environment themselves, not through the config
/// loaders' keys.
const ENV_ONLY: [&str; 1] = ["log_format"];

fn source_of(container: &Container, env: &BTreeMap<String, String>) -> ConfigSource {
    let pairs: Vec<(String, String)> = env
        .iter()
        .map(|(name, value)| {
            let key = name
                .strip_prefix("TENANTRY_")
                .unwrap_or_else(|| panic!("{}: {name} is not a Tenantry setting", container.label))
                .to_ascii_lowercase();
            assert!(
                shared::config::KNOWN_KEYS.contains(&key.as_str())
                    || ENV_ONLY.contains(&key.as_str()),
                "{}: {name} is no setting of either binary (a typo?)",
                container.label
            );
            (key, value.clone())
        })
        .collect();
    ConfigSource::from_pairs(
        pairs
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_str())),
    )
}

#[test]
fn every_container_of_the_manifests_gets_a_configuration_its_binary_accepts() {
    let deployment = load();
    let containers = deployment.containers();
    let mut started = BTreeSet::new();
    for container in &containers {
        let env = deployment.environment(container);
        let source = source_of(container, &env);
        let binary = list(container.spec, "command")
            .first()
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("{}: no command", container.label));
        let command = list(container.spec, "args")
            .first()
            .and_then(Value::as_str)
            .unwrap_or("serve");
        assert_eq!(
            container.spec["securityContext"]["readOnlyRootFilesystem"].as_bool(),
            Some(true),
            "{}",
            container.label
        );
        match binary {
            "data-plane" => {
                let config = data_plane::config::Config::from_source(&source)
                    .unwrap_or_else(|error| panic!("{}: {error}", container.label));
                deployment.assert_secret_file(container, &config.kek_file);
                deployment.assert_secret_file(container, &config.password_pepper_file);
                deployment.assert_persistent(container, &config.events.spool_dir);
            }
            "control-plane" => {
                let config = control_plane::config::Config::from_source(&source)
                    .unwrap_or_else(|error| panic!("{}: {error}", container.label));
                deployment.assert_secret_file(container, &config.kek_file);
                if command == "serve" {
                    deployment.assert_persistent(container, &config.events.spool_dir);
                }
            }
            other => panic!("{}: unknown binary {other}", container.label),
        }
        started.insert(format!("{binary} {command}"));
    }
    // Each binary's server runs, and the catalog is migrated before the control plane serves.
    let expected: BTreeSet<String> = [
        "control-plane migrate",
        "control-plane serve",
        "data-plane serve",
    ]
    .map(String::from)
    .into();
    assert_eq!(started, expected);
}

#[test]
fn a_missing_or_misspelt_setting_is_caught() {
    // The check above can fail: without the pepper file's variable the data plane refuses
    // its configuration, and a Secret key the example does not define is named.
    let deployment = load();
    let containers = deployment.containers();
    let node = containers
        .iter()
        .find(|container| container.label.contains("data-plane container data-plane"))
        .unwrap();
    let mut env = deployment.environment(node);
    env.remove("TENANTRY_PASSWORD_PEPPER_FILE");
    let Err(error) = data_plane::config::Config::from_source(&source_of(node, &env)) else {
        panic!("the data plane accepted a configuration without a pepper");
    };
    assert!(
        error.to_string().contains("TENANTRY_PASSWORD_PEPPER_FILE"),
        "{error}"
    );
    // A reference to a key the kustomization does not define fails the check, naming it.
    let reference: Value =
        serde_yaml_ng::from_str("{name: tenantry-db, key: no-such-key}").unwrap();
    let missing = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        deployment.key_of(&deployment.secrets, &reference, "Secret", node)
    }));
    let message = missing
        .expect_err("a Secret key the kustomization does not define was found")
        .downcast::<String>()
        .map(|message| *message)
        .unwrap_or_default();
    assert!(
        message.contains("Secret tenantry-db has no key no-such-key"),
        "{message}"
    );
}

/// Packages of `debian:bookworm-slim` itself (what `dpkg` and `apt` depend on): the runtime
/// stage need not install them.
const BASE_PACKAGES: [&str; 9] = [
    "libc6",
    "libgcc-s1",
    "libstdc++6",
    "zlib1g",
    "liblzma5",
    "libbz2-1.0",
    "libzstd1",
    "libselinux1",
    "libmd0",
];

#[test]
fn the_dockerfile_installs_every_library_the_binaries_link() {
    let dockerfile = std::fs::read_to_string(deploy_dir().join("docker/Dockerfile")).unwrap();
    let runtime = dockerfile
        .split("FROM ")
        .find(|stage| stage.starts_with("debian:bookworm-slim AS runtime"))
        .expect("a runtime stage on debian:bookworm-slim");
    let installed: BTreeSet<String> = runtime
        .split("apt-get install")
        .nth(1)
        .expect("the runtime stage installs packages")
        .split("&&")
        .next()
        .unwrap()
        .split_whitespace()
        .filter(|word| !word.starts_with('-') && *word != "\\")
        .map(String::from)
        .collect();
    // What those packages bring along (this machine runs the same Debian release).
    let mut available: BTreeSet<String> = BASE_PACKAGES.map(String::from).into();
    for package in &installed {
        available.insert(package.clone());
        let depends = std::process::Command::new("dpkg-query")
            .args(["-W", "-f", "${Depends}", package])
            .output()
            .unwrap();
        assert!(
            depends.status.success(),
            "{package} is not a Debian package installed here"
        );
        for dependency in String::from_utf8_lossy(&depends.stdout).split(',') {
            if let Some(name) = dependency.split_whitespace().next() {
                available.insert(name.to_owned());
            }
        }
    }
    // This test executable links what both binaries link (their libraries and samael's).
    let executable = std::env::current_exe().unwrap();
    let ldd = std::process::Command::new("ldd")
        .arg(&executable)
        .output()
        .unwrap();
    assert!(ldd.status.success());
    let mut needed = BTreeSet::new();
    for line in String::from_utf8_lossy(&ldd.stdout).lines() {
        let Some(library) = line
            .split("=>")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
        else {
            continue;
        };
        let real = std::fs::canonicalize(library).unwrap();
        let owner = std::process::Command::new("dpkg")
            .arg("-S")
            .arg(&real)
            .output()
            .unwrap();
        let owner = if owner.status.success() {
            owner
        } else {
            std::process::Command::new("dpkg")
                .args(["-S", library])
                .output()
                .unwrap()
        };
        assert!(owner.status.success(), "no package owns {library}");
        let package = String::from_utf8_lossy(&owner.stdout)
            .split(':')
            .next()
            .unwrap()
            .trim()
            .to_owned();
        needed.insert(package);
    }
    assert!(
        needed.contains("libxmlsec1"),
        "samael's library is linked: {needed:?}"
    );
    let missing: Vec<_> = needed.difference(&available).collect();
    assert!(missing.is_empty(), "the runtime image lacks {missing:?}");
}
