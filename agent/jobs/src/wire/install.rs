//! What `create` installs, on the wire: the patch selection and the installation fields
//! (installer set, version, JDK, owner, WDT, installer options), both ways.

use super::*;

pub(super) fn patches(
    field: &str,
    selection: &Option<wire::PatchSelection>,
) -> Result<PatchRequest, SpecError> {
    let Some(selection) = selection else {
        return Ok(PatchRequest::default());
    };
    for (i, id) in selection.ids.iter().enumerate() {
        if !id.bytes().all(|b| b.is_ascii_digit()) || id.is_empty() {
            CacheKey::patch(id).map_err(|e| bad(format!("{field}.ids[{i}]"), e))?;
        }
    }
    let choice = match selection.catalog_choice() {
        wire::CatalogChoice::CatalogNone => None,
        wire::CatalogChoice::Recommended => Some(CatalogChoice::Recommended),
        wire::CatalogChoice::LatestPsu => Some(CatalogChoice::LatestPsu),
    };
    let catalog = match choice {
        None => None,
        Some(_) if selection.catalog_path.is_empty() => {
            return Err(bad(
                format!("{field}.catalog_path"),
                "is empty: a catalog choice resolves against the fleet's patch catalog",
            ))
        }
        Some(choice) => Some((PathBuf::from(&selection.catalog_path), choice)),
    };
    let mode = selection
        .opatch_mode
        .parse()
        .map_err(|e: String| bad(format!("{field}.opatch_mode"), e))?;
    Ok(PatchRequest {
        ids: selection.ids.clone(),
        catalog,
        mode,
        strict_order: selection.strict_patch_ordering,
        opatch_bug: Some(selection.opatch_bug_number.clone()).filter(|b| !b.is_empty()),
        skip_opatch_update: selection.skip_opatch_update,
    })
}

pub(super) fn patch_selection(request: &PatchRequest) -> wire::PatchSelection {
    let (choice, path) = match &request.catalog {
        None => (wire::CatalogChoice::CatalogNone, String::new()),
        Some((path, CatalogChoice::Recommended)) => {
            (wire::CatalogChoice::Recommended, path.display().to_string())
        }
        Some((path, CatalogChoice::LatestPsu)) => {
            (wire::CatalogChoice::LatestPsu, path.display().to_string())
        }
    };
    wire::PatchSelection {
        ids: request.ids.clone(),
        catalog_choice: choice as i32,
        catalog_path: path,
        opatch_mode: match request.mode {
            patchfarm_engine::opatch::OpatchMode::Auto => String::new(),
            mode => mode.to_string(),
        },
        strict_patch_ordering: request.strict_order,
        opatch_bug_number: request.opatch_bug.clone().unwrap_or_default(),
        skip_opatch_update: request.skip_opatch_update,
    }
}

/// `create`'s installation fields into a request for `tag` on `from_image`.
pub(super) fn install(
    field: &str,
    spec: &Option<wire::InstallSpec>,
    tag: ImageRef,
    from_image: ImageRef,
) -> Result<CreateRequest, SpecError> {
    let spec = required(field, spec)?;
    let (kind, version) = (
        not_empty(&format!("{field}.type"), &spec.r#type)?,
        not_empty(&format!("{field}.version"), &spec.version)?,
    );
    let set = InstallerSet::parse(kind).map_err(|e| bad(format!("{field}.type"), e))?;
    CacheKey::installer(kind, version, None).map_err(|e| bad(format!("{field}.version"), e))?;
    let jdk = not_empty(&format!("{field}.jdk_version"), &spec.jdk_version)?;
    CacheKey::installer("jdk", jdk, None).map_err(|e| bad(format!("{field}.jdk_version"), e))?;
    Ok(CreateRequest {
        tag,
        from_image,
        kind: set.kind(),
        version: version.to_string(),
        jdk_version: jdk.to_string(),
        patches: patches(&format!("{field}.patches"), &spec.patches)?,
        chown: chown(&format!("{field}.chown"), &spec.chown)?,
        wdt: wdt(&format!("{field}.wdt"), &spec.wdt)?,
        target: kube_target(&format!("{field}.target"), &spec.target)?,
        additional_files: Vec::new(),
        platforms: Vec::new(),
        build_commands: None,
        installer_options: installer_options(&format!("{field}.installer_options"), spec)?,
        step_network: false,
        package_manager: Default::default(),
    })
}

fn installer_options(field: &str, spec: &wire::InstallSpec) -> Result<InstallerOptions, SpecError> {
    let Some(given) = &spec.installer_options else {
        return Ok(InstallerOptions::default());
    };
    for (i, file) in given.response_files.iter().enumerate() {
        not_empty(&format!("{field}.response_files[{i}]"), file)?;
    }
    let dir = &given.inventory_pointer_dir;
    if !dir.is_empty() && !dir.starts_with('/') {
        return Err(bad(
            format!("{field}.inventory_pointer_dir"),
            format!("{dir:?} is not an absolute path in the image"),
        ));
    }
    Ok(InstallerOptions {
        response_files: given.response_files.iter().map(PathBuf::from).collect(),
        inventory_pointer: (!given.inventory_pointer.is_empty())
            .then(|| PathBuf::from(&given.inventory_pointer)),
        inventory_pointer_dir: (!dir.is_empty()).then(|| dir.clone()),
    })
}

pub(super) fn install_spec(request: &CreateRequest) -> wire::InstallSpec {
    wire::InstallSpec {
        r#type: request.kind.clone(),
        version: request.version.clone(),
        jdk_version: request.jdk_version.clone(),
        patches: Some(patch_selection(&request.patches)),
        chown: request.chown.clone(),
        wdt: Some(wdt_files(&request.wdt)),
        target: kube_target_spec(request.target),
        installer_options: (!request.installer_options.is_empty()).then(|| {
            let options = &request.installer_options;
            wire::InstallerOptions {
                response_files: strings(&options.response_files),
                inventory_pointer: options
                    .inventory_pointer
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
                inventory_pointer_dir: options.inventory_pointer_dir.clone().unwrap_or_default(),
            }
        }),
    }
}
