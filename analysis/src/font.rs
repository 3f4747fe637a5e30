//! Finding a TrueType/OpenType font at run time for the plots.
//!
//! plotters is built with its `ab_glyph` text renderer, which needs no system library but must
//! be handed a font file. No font is bundled: one is looked up at run time, in this order: the
//! file named by `--font` or by the `ANALYSIS_FONT` environment variable; then, under
//! `/usr/share/fonts`, `/usr/local/share/fonts`, `~/.local/share/fonts` and `~/.fonts`, a
//! well-known sans-serif file (DejaVu Sans, Liberation Sans, Noto Sans, FreeSans); then any
//! upright `.ttf`/`.otf` file found there. On Debian, `apt-get install fonts-dejavu-core`
//! provides `/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf`.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{anyhow, bail, Context, Result};

/// Environment variable naming a font file to use.
pub const FONT_ENV: &str = "ANALYSIS_FONT";

/// The family name plots ask plotters for.
pub const FAMILY: &str = "sans-serif";

/// Preferred font files, best first.
const PREFERRED: [&str; 6] = [
    "DejaVuSans.ttf",
    "LiberationSans-Regular.ttf",
    "NotoSans-Regular.ttf",
    "FreeSans.ttf",
    "Arial.ttf",
    "Vera.ttf",
];

/// Where fonts are searched when none is named.
pub fn default_font_dirs() -> Vec<PathBuf> {
    let mut dirs = vec![
        PathBuf::from("/usr/share/fonts"),
        PathBuf::from("/usr/local/share/fonts"),
    ];
    if let Some(home) = std::env::var_os("HOME") {
        let home = PathBuf::from(home);
        dirs.push(home.join(".local/share/fonts"));
        dirs.push(home.join(".fonts"));
    }
    dirs
}

/// Choose a font file: `explicit` if given (it must exist), else the best one under `dirs`.
pub fn find_font(explicit: Option<&Path>, dirs: &[PathBuf]) -> Result<PathBuf> {
    if let Some(p) = explicit {
        if p.is_file() {
            return Ok(p.to_path_buf());
        }
        bail!("font file {} does not exist", p.display());
    }
    let mut files = Vec::new();
    for d in dirs {
        collect_fonts(d, 0, &mut files);
    }
    files.sort();
    let name = |p: &PathBuf| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    for want in PREFERRED {
        if let Some(p) = files.iter().find(|p| name(p) == want) {
            return Ok(p.clone());
        }
    }
    let upright = |p: &&PathBuf| {
        let n = name(p).to_ascii_lowercase();
        !["bold", "italic", "oblique", "mono", "light", "condensed"]
            .iter()
            .any(|w| n.contains(w))
    };
    if let Some(p) = files.iter().find(upright).or(files.first()) {
        return Ok(p.clone());
    }
    let searched: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    Err(anyhow!(
        "no TrueType/OpenType font found (searched {}); install one (Debian: apt-get install \
         fonts-dejavu-core) or name a .ttf file with --font or {FONT_ENV}",
        if searched.is_empty() {
            "nowhere".to_string()
        } else {
            searched.join(", ")
        }
    ))
}

fn collect_fonts(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    crate::results::walk(dir, depth, 8, &mut |p, is_dir| {
        let font = matches!(
            p.extension()
                .and_then(|x| x.to_str())
                .map(str::to_ascii_lowercase)
                .as_deref(),
            Some("ttf" | "otf")
        );
        if !is_dir && font {
            out.push(p.to_path_buf());
        }
        is_dir
    });
}

/// The font registered with plotters so far, if any: its path and bytes.
static REGISTERED: Mutex<Option<(PathBuf, &'static [u8])>> = Mutex::new(None);

/// Register a font file with plotters as the [`FAMILY`] family. Registering the same file again
/// is free; another file replaces it.
pub fn register(path: &Path) -> Result<()> {
    let mut reg = REGISTERED
        .lock()
        .map_err(|_| anyhow!("font registry lock poisoned"))?;
    if reg.as_ref().map(|r| r.0.as_path()) == Some(path) {
        return Ok(());
    }
    let bytes = fs::read(path).with_context(|| format!("{}: cannot read font", path.display()))?;
    ab_glyph::FontRef::try_from_slice(&bytes)
        .map_err(|_| anyhow!("{}: not a usable TrueType/OpenType font", path.display()))?;
    // plotters keeps a `&'static [u8]`; a report registers one font, so leaking it is fine.
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    plotters::style::register_font(FAMILY, plotters::style::FontStyle::Normal, bytes)
        .map_err(|_| anyhow!("{}: not a usable TrueType/OpenType font", path.display()))?;
    *reg = Some((path.to_path_buf(), bytes));
    Ok(())
}

/// The font file registered with plotters, if any.
pub fn registered() -> Option<PathBuf> {
    REGISTERED
        .lock()
        .ok()
        .and_then(|r| r.as_ref().map(|r| r.0.clone()))
}

/// The registered font, parsed, for drawing text directly (see [`crate::raster`]).
pub fn registered_font() -> Option<ab_glyph::FontRef<'static>> {
    let bytes = REGISTERED.lock().ok()?.as_ref()?.1;
    ab_glyph::FontRef::try_from_slice(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_fonts_give_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let e = find_font(None, &[dir.path().to_path_buf()])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("fonts-dejavu-core") && e.contains(FONT_ENV),
            "{e}"
        );
        let e = find_font(Some(&dir.path().join("nope.ttf")), &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("nope.ttf"), "{e}");
    }

    #[test]
    fn preferred_and_upright_fonts_win() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("truetype/x");
        fs::create_dir_all(&sub).unwrap();
        for n in ["Zed-Bold.ttf", "Zed.ttf", "readme.txt"] {
            fs::write(sub.join(n), b"").unwrap();
        }
        let dirs = [dir.path().to_path_buf()];
        assert_eq!(find_font(None, &dirs).unwrap(), sub.join("Zed.ttf"));
        fs::write(sub.join("DejaVuSans.ttf"), b"").unwrap();
        assert_eq!(find_font(None, &dirs).unwrap(), sub.join("DejaVuSans.ttf"));
    }

    #[test]
    fn invalid_font_files_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.ttf");
        fs::write(&p, b"not a font").unwrap();
        let e = register(&p).unwrap_err().to_string();
        assert!(e.contains("bad.ttf"), "{e}");
    }
}
