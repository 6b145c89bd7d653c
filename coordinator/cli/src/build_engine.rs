//! WIT's options that steer the `docker build` it drives. patchfarm assembles images itself, so
//! they have nothing to steer: each is accepted, so WIT command lines run unchanged, and says in
//! one line on stderr what it means here — never silently dropped.

/// Flattened into every verb that builds an image.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct BuildEngineArgs {
    /// WIT: the executable that processes the Dockerfile. patchfarm builds without one.
    #[arg(long, short = 'b', value_name = "EXECUTABLE")]
    builder: Option<String>,
    /// WIT (older releases): path to the docker executable. patchfarm builds without one.
    #[arg(long, value_name = "EXECUTABLE")]
    docker: Option<String>,
    /// WIT: always pull the base image. patchfarm always reads the base from its registry.
    #[arg(long)]
    pull: bool,
    /// WIT: keep the build context and intermediate images. patchfarm keeps neither.
    #[arg(long)]
    skipcleanup: bool,
    /// WIT: build with `docker buildx`. patchfarm builds several platforms itself (--platform).
    #[arg(long = "useBuildx", alias = "use-buildx")]
    use_buildx: bool,
    /// WIT: an argument for the build engine. patchfarm runs no build engine.
    #[arg(long = "build-arg", value_name = "NAME=VALUE")]
    build_args: Vec<String>,
    /// WIT: a file for the build engine's output. patchfarm's progress goes to stderr.
    #[arg(long = "dockerLog", alias = "docker-log", value_name = "FILE")]
    docker_log: Option<String>,
    /// WIT: properties describing --fromImage, so WIT need not run it to inspect it. patchfarm
    /// reads the image's files itself.
    #[arg(long = "fromImageProperties", value_name = "FILE")]
    from_image_properties: Option<String>,
    /// WIT: the network of the build's RUN steps. patchfarm runs no build steps.
    #[arg(long = "buildNetwork", alias = "build-network", value_name = "NETWORK")]
    build_network: Option<String>,
}

impl BuildEngineArgs {
    /// One line per option given, saying what it means here.
    pub fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        let mut say = |given: bool, flag: &str, meaning: &str| {
            if given {
                notes.push(format!("note: {flag}: {meaning}"));
            }
        };
        let engine =
            "patchfarm assembles the image itself, without a build engine; it has no effect";
        say(self.builder.is_some(), "--builder", engine);
        say(self.docker.is_some(), "--docker", engine);
        say(
            self.pull,
            "--pull",
            "the base image is always read from its registry",
        );
        say(
            self.skipcleanup,
            "--skipcleanup",
            "there is no build context or intermediate image to keep",
        );
        say(
            self.use_buildx,
            "--useBuildx",
            "several platforms are built natively with --platform A,B",
        );
        say(!self.build_args.is_empty(), "--build-arg", engine);
        say(
            self.from_image_properties.is_some(),
            "--fromImageProperties",
            "patchfarm reads --fromImage's own files and never runs it to inspect it; the file is not needed and not read",
        );
        say(
            self.docker_log.is_some(),
            "--dockerLog",
            "progress and errors go to stderr",
        );
        say(
            self.build_network.is_some(),
            "--buildNetwork",
            "build steps (Oracle's installers, --additionalBuildCommands) get the build host's network; without it they have none (NAME is not a Docker network here; `none` keeps it off)",
        );
        notes
    }

    /// Whether build steps get the network (`--buildNetwork NAME`, any name but `none`).
    pub fn step_network(&self) -> bool {
        self.build_network
            .as_deref()
            .is_some_and(|n| !n.eq_ignore_ascii_case("none"))
    }

    /// Prints [`notes`](Self::notes) to stderr.
    pub fn say(&self) {
        for note in self.notes() {
            eprintln!("{note}");
        }
    }
}
