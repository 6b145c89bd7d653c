//! What every patchfarm binary starts with: logging to stderr and an async main whose error
//! prints its whole cause chain and exits non-zero.

/// Logging for the daemons (`patchfarm-coordinator`, `patchfarm-agent`): `RUST_LOG` or
/// `default`, to stderr, colour only on a terminal, `json` or `text`; with `otlp` (an
/// `--otlp-endpoint` URL) also every span, exported as OpenTelemetry spans over OTLP/gRPC as
/// `service`. Call it inside the runtime when exporting (the exporter's channel lives on it);
/// keep the returned guard until the daemon ends: dropping it sends what is left.
pub fn init_daemon_logging(
    log_format: &str,
    default: &str,
    otlp: Option<(&str, &str)>,
) -> anyhow::Result<TraceExport> {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    use tracing_subscriber::Layer as _;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        // A write error would be reported with eprintln!, which panics the logging thread once
        // stderr's pipe is closed (and with it the SIGTERM handler): lost lines beat a lost signal.
        .log_internal_errors(false);
    let fmt = match log_format {
        "json" => fmt.json().boxed(),
        "text" => fmt.boxed(),
        other => anyhow::bail!("--log-format {other:?}: expected text or json"),
    };
    let (provider, spans) = match otlp {
        Some((endpoint, service)) => {
            let (provider, layer) = otlp_layer(endpoint, service)?;
            (Some(provider), Some(layer))
        }
        None => (None, None),
    };
    // The span exporter sits right on the registry (its type wants that); the filter, a global
    // one, still decides for every layer.
    tracing_subscriber::registry()
        .with(spans)
        .with(filter)
        .with(fmt)
        .init();
    Ok(TraceExport(provider))
}

/// Spans as OpenTelemetry spans, batched to the OTLP/gRPC collector at `endpoint`.
fn otlp_layer(
    endpoint: &str,
    service: &str,
) -> anyhow::Result<(
    opentelemetry_sdk::trace::SdkTracerProvider,
    tracing_opentelemetry::OpenTelemetryLayer<
        tracing_subscriber::Registry,
        opentelemetry_sdk::trace::Tracer,
    >,
)> {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_otlp::WithExportConfig as _;
    if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
        anyhow::bail!("--otlp-endpoint {endpoint:?}: expected an http:// or https:// URL of an OTLP/gRPC collector");
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .with_timeout(std::time::Duration::from_secs(5))
        .build()
        .map_err(|e| anyhow::anyhow!("--otlp-endpoint {endpoint}: {e}"))?;
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            opentelemetry_sdk::Resource::builder_empty()
                .with_service_name(service.to_string())
                .build(),
        )
        .build();
    let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("patchfarm"));
    Ok((provider, layer))
}

/// Keeps trace export running; on drop, sends the spans still batched (within its deadline).
pub struct TraceExport(Option<opentelemetry_sdk::trace::SdkTracerProvider>);

impl Drop for TraceExport {
    fn drop(&mut self) {
        if let Some(provider) = self.0.take() {
            if let Err(e) = provider.shutdown() {
                eprintln!("trace export: {e}");
            }
        }
    }
}

/// Runs a binary's async main on a multi-threaded runtime; an error prints its whole cause
/// chain and exits non-zero. Shared by every patchfarm binary.
pub fn run_to_exit(
    main: impl std::future::Future<Output = anyhow::Result<()>>,
) -> std::process::ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(main) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", error_line(&e));
            std::process::ExitCode::FAILURE
        }
    }
}

/// A token cancelled on SIGTERM or SIGINT. The handlers are registered before this returns, so
/// a signal that arrives as soon as the daemon has said anything is heard, not fatal: a handler
/// registered from a spawned task may not be in place yet when the first log line is read.
/// Call it from within the runtime, before the daemon logs.
pub fn cancel_on_signal(
    what_follows: &'static str,
) -> anyhow::Result<tokio_util::sync::CancellationToken> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate())
        .map_err(|e| anyhow::anyhow!("cannot handle SIGTERM: {e}"))?;
    let mut interrupt = signal(SignalKind::interrupt())
        .map_err(|e| anyhow::anyhow!("cannot handle SIGINT: {e}"))?;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let on_signal = shutdown.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
        tracing::info!("signal received; {what_follows}");
        on_signal.cancel();
    });
    Ok(shutdown)
}

/// An error and its causes on one line, each said once: many error types print their source in
/// their own message as well, and `{:#}` would repeat it ("not a regular file: not a regular
/// file").
pub fn error_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

#[cfg(test)]
mod tests {
    #[test]
    fn each_cause_is_said_once() {
        let inner = std::io::Error::other("not a regular file");
        let e = anyhow::Error::new(inner)
            .context("cannot read /dev/zero: not a regular file")
            .context("cache addInstaller");
        assert_eq!(
            super::error_line(&e),
            "cache addInstaller: cannot read /dev/zero: not a regular file"
        );
    }
}
