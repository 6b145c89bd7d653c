//! WDT's part of a job spec: the files, which WDT, and the domain it builds (never a passphrase).

use super::{bad, not_empty, paths, required, strings, wire, SpecError};
use patchfarm_engine::recipe::create::WdtRequest;
use patchfarm_engine::recipe::domain::{DomainBuild, WdtOperation};

pub(super) fn wdt(field: &str, files: &Option<wire::WdtFiles>) -> Result<WdtRequest, SpecError> {
    let files = required(field, files)?;
    Ok(WdtRequest {
        models: paths(&files.models),
        archives: paths(&files.archives),
        variables: paths(&files.variables),
        version: not_empty(&format!("{field}.version"), &files.version)?.to_string(),
        domain: files
            .domain
            .as_ref()
            .map(|d| wdt_domain(&format!("{field}.domain"), d))
            .transpose()?,
        home: (!files.home.is_empty()).then(|| files.home.clone()),
        model_home: (!files.model_home.is_empty()).then(|| files.model_home.clone()),
    })
}

fn wdt_domain(field: &str, spec: &wire::WdtDomain) -> Result<DomainBuild, SpecError> {
    let operation =
        WdtOperation::parse(&spec.operation).map_err(|e| bad(format!("{field}.operation"), e))?;
    let domain_home = not_empty(&format!("{field}.domain_home"), &spec.domain_home)?;
    if !domain_home.starts_with('/') {
        return Err(bad(
            format!("{field}.domain_home"),
            "must be an absolute path",
        ));
    }
    Ok(DomainBuild {
        operation,
        domain_home: domain_home.to_string(),
        domain_type: not_empty(&format!("{field}.domain_type"), &spec.domain_type)?.to_string(),
        java_options: (!spec.java_options.is_empty()).then(|| spec.java_options.clone()),
        run_rcu: spec.run_rcu,
        passphrase: None,
    })
}

pub(super) fn wdt_files(request: &WdtRequest) -> wire::WdtFiles {
    wire::WdtFiles {
        models: strings(&request.models),
        archives: strings(&request.archives),
        variables: strings(&request.variables),
        version: request.version.clone(),
        domain: request.domain.as_ref().map(|d| wire::WdtDomain {
            operation: d.operation.name().into(),
            domain_home: d.domain_home.clone(),
            domain_type: d.domain_type.clone(),
            java_options: d.java_options.clone().unwrap_or_default(),
            run_rcu: d.run_rcu,
        }),
        home: request.home.clone().unwrap_or_default(),
        model_home: request.model_home.clone().unwrap_or_default(),
    }
}
