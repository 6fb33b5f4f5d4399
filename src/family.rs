//! The model family: models selected by name instead of by file.
//!
//! - `lite`: the CPU-live default, compiled into the engine ([`crate::DEFAULT_MODEL`]), so the
//!   element and the command work with no file at all;
//! - `standard`: costlier, for CPUs with time to spare or small frames;
//! - `full`: for GPUs;
//! - `dehaze`: a `lite`-sized model trained on haze instead of rain.
//!
//! Only `lite` is embedded, so the other models do not bloat the plugin. The others are ONNX files
//! named `NAME.onnx`, looked up in [`search_dirs`]: `$NLCL_MODEL_DIR`, the folder
//! `scripts/setup.sh` installs them into (`/usr/local/share/nlcl/models`), then the source
//! tree's `models/` folder.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use crate::runtime::RuntimeError;

/// Environment variable naming an extra folder of named models (searched first).
pub const MODEL_DIR_ENV: &str = "NLCL_MODEL_DIR";

/// Where `scripts/setup.sh` installs the named models.
pub const INSTALLED_MODEL_DIR: &str = "/usr/local/share/nlcl/models";

/// A model of the family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ModelName {
    /// The embedded CPU-live default.
    #[default]
    Lite,
    /// Costlier, better CPU model.
    Standard,
    /// The GPU model.
    Full,
    /// Haze removal (lite-sized).
    Dehaze,
}

impl ModelName {
    /// Every name: the deraining models cheapest first, then dehazing.
    pub const ALL: [ModelName; 4] = [
        ModelName::Lite,
        ModelName::Standard,
        ModelName::Full,
        ModelName::Dehaze,
    ];

    /// The name users type (`lite`, `standard`, `full`).
    pub fn as_str(&self) -> &'static str {
        match self {
            ModelName::Lite => "lite",
            ModelName::Standard => "standard",
            ModelName::Full => "full",
            ModelName::Dehaze => "dehaze",
        }
    }

    /// Parses a name (case-insensitive); `None` for anything else (for example a file path).
    pub fn from_name(name: &str) -> Option<ModelName> {
        ModelName::ALL
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(name))
    }

    /// The file the model is looked up as.
    pub fn file_name(&self) -> String {
        format!("{}.onnx", self.as_str())
    }
}

impl std::fmt::Display for ModelName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Folders searched for named model files, in order.
pub fn search_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(d) = std::env::var_os(MODEL_DIR_ENV).filter(|d| !d.is_empty()) {
        dirs.push(PathBuf::from(d));
    }
    dirs.push(PathBuf::from(INSTALLED_MODEL_DIR));
    dirs.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("models"));
    dirs
}

/// Which model to run: a named model of the family or a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSource {
    /// A model of the family.
    Named(ModelName),
    /// An ONNX file following the model contract.
    File(PathBuf),
}

impl Default for ModelSource {
    fn default() -> Self {
        ModelSource::Named(ModelName::Lite)
    }
}

impl ModelSource {
    /// A family name (`lite`, `standard`, `full`) or else a file path.
    pub fn parse(name_or_path: &str) -> ModelSource {
        match ModelName::from_name(name_or_path) {
            Some(m) => ModelSource::Named(m),
            None => ModelSource::File(PathBuf::from(name_or_path)),
        }
    }

    /// The model's bytes and a description of where they came from (for messages).
    pub fn bytes(&self) -> Result<(Cow<'static, [u8]>, String), RuntimeError> {
        match self {
            ModelSource::File(path) => {
                if !path.exists() {
                    return Err(RuntimeError::ModelNotFound { path: path.clone() });
                }
                let bytes = std::fs::read(path).map_err(|e| RuntimeError::ModelUnreadable {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
                Ok((
                    Cow::Owned(bytes),
                    format!("{:?}", path.display().to_string()),
                ))
            }
            ModelSource::Named(ModelName::Lite) => match crate::DEFAULT_MODEL {
                Some(b) => Ok((Cow::Borrowed(b), "built-in model lite".to_string())),
                None => Err(RuntimeError::NoDefaultModel),
            },
            ModelSource::Named(name) => {
                let path = find_named(*name, &search_dirs())?;
                let bytes = std::fs::read(&path).map_err(|e| RuntimeError::ModelUnreadable {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
                Ok((
                    Cow::Owned(bytes),
                    format!("model {name} ({})", path.display()),
                ))
            }
        }
    }
}

/// The first `NAME.onnx` in `dirs`; the error lists every place looked at.
pub fn find_named(name: ModelName, dirs: &[PathBuf]) -> Result<PathBuf, RuntimeError> {
    let searched: Vec<PathBuf> = dirs.iter().map(|d| d.join(name.file_name())).collect();
    match searched.iter().find(|p| p.is_file()) {
        Some(p) => Ok(p.clone()),
        None => Err(RuntimeError::NamedModelNotFound {
            name: name.as_str().to_string(),
            searched,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_paths_stay_paths() {
        assert_eq!(
            ModelSource::parse("Standard"),
            ModelSource::Named(ModelName::Standard)
        );
        assert_eq!(
            ModelSource::parse("lite.onnx"),
            ModelSource::File(PathBuf::from("lite.onnx"))
        );
        for m in ModelName::ALL {
            assert_eq!(ModelName::from_name(m.as_str()), Some(m));
        }
    }

    #[test]
    fn named_models_are_found_in_order_or_every_place_is_listed() {
        let base = std::env::temp_dir().join(format!("nlcl-family-{}", std::process::id()));
        let (a, b) = (base.join("a"), base.join("b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        std::fs::write(b.join("standard.onnx"), b"x").unwrap();
        let dirs = [a.clone(), b.clone()];
        assert_eq!(
            find_named(ModelName::Standard, &dirs).unwrap(),
            b.join("standard.onnx")
        );
        let e = find_named(ModelName::Full, &dirs).unwrap_err().to_string();
        assert!(e.contains("\"full\""), "{e}");
        assert!(
            e.contains(&a.join("full.onnx").display().to_string()),
            "{e}"
        );
        assert!(
            e.contains(&b.join("full.onnx").display().to_string()),
            "{e}"
        );
        assert!(e.contains("NLCL_MODEL_DIR"), "{e}");
        std::fs::remove_dir_all(&base).ok();
    }

    #[test]
    fn a_missing_file_is_named() {
        let e = ModelSource::File("/nonexistent/m.onnx".into())
            .bytes()
            .unwrap_err();
        assert!(e.to_string().contains("/nonexistent/m.onnx"), "{e}");
    }
}
