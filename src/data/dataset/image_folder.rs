//! torchvision's `ImageFolder` layout: one sub-folder per class.

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use image::RgbImage;

use super::{file_err, load_image, load_image_draft, Dataset};
use crate::error::Result;

/// File extensions `ImageFolder` picks up (case-insensitive): torchvision's `IMG_EXTENSIONS`
/// plus gif. Only JPEG and PNG decode in this build; other formats give a clear error when
/// loaded.
pub const IMAGE_EXTENSIONS: &[&str] = &[
    "jpg", "jpeg", "png", "ppm", "bmp", "pgm", "tif", "tiff", "webp", "gif",
];

fn has_image_extension(name: &str) -> bool {
    let lower = name.to_lowercase();
    IMAGE_EXTENSIONS
        .iter()
        .any(|ext| lower.ends_with(&format!(".{ext}")))
}

/// torchvision's `ImageFolder`: `root/<class>/**/<image>`.
///
/// Each sub-folder of `root` is a class; labels follow the sorted folder names. Images are
/// found recursively (symbolic links followed) in the order torchvision lists them: folders
/// sorted by path, files sorted by name within each.
#[derive(Debug, Clone)]
pub struct ImageFolder {
    root: PathBuf,
    classes: Vec<String>,
    samples: Vec<(PathBuf, usize)>,
}

/// Sorted names of the sub-folders of `root` (torchvision's `find_classes`).
fn class_folders(root: &Path) -> Result<Vec<String>> {
    let meta = std::fs::metadata(root)
        .map_err(|e| file_err(root, format!("cannot open the dataset folder ({e}); expected a folder with one sub-folder per class")))?;
    if !meta.is_dir() {
        return Err(file_err(
            root,
            "is not a folder; expected a folder with one sub-folder per class",
        ));
    }
    let mut classes = Vec::new();
    let entries =
        std::fs::read_dir(root).map_err(|e| file_err(root, format!("cannot list folder: {e}")))?;
    for entry in entries {
        let entry = entry.map_err(|e| file_err(root, format!("cannot list folder: {e}")))?;
        // fs::metadata follows symbolic links, as os.scandir's is_dir() does.
        if std::fs::metadata(entry.path())
            .map(|m| m.is_dir())
            .unwrap_or(false)
        {
            classes.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    classes.sort();
    if classes.is_empty() {
        return Err(file_err(root, "has no class sub-folders; expected a folder with one sub-folder per class (root/<class>/<image>)"));
    }
    Ok(classes)
}

/// All image files under `dir`, in `sorted(os.walk(dir, followlinks=True))` order.
fn images_under(dir: &Path) -> Result<Vec<PathBuf>> {
    // (folder path as bytes for sorting, folder, sorted image file names)
    let mut folders: Vec<(Vec<u8>, PathBuf, Vec<String>)> = Vec::new();
    let mut visited = HashSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        // Guard against symbolic-link cycles.
        if let Ok(canonical) = std::fs::canonicalize(&folder) {
            if !visited.insert(canonical) {
                continue;
            }
        }
        let entries = std::fs::read_dir(&folder)
            .map_err(|e| file_err(&folder, format!("cannot list folder: {e}")))?;
        let mut files = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| file_err(&folder, format!("cannot list folder: {e}")))?;
            let path = entry.path();
            if std::fs::metadata(&path)
                .map(|m| m.is_dir())
                .unwrap_or(false)
            {
                stack.push(path);
            } else {
                let name = entry.file_name().to_string_lossy().into_owned();
                if has_image_extension(&name) {
                    files.push(name);
                }
            }
        }
        files.sort();
        folders.push((
            folder.as_os_str().as_encoded_bytes().to_vec(),
            folder,
            files,
        ));
    }
    folders.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(folders
        .into_iter()
        .flat_map(|(_, folder, files)| files.into_iter().map(move |f| folder.join(f)))
        .collect())
}

impl ImageFolder {
    /// Opens `root/<class>/**/<image>`, classes sorted by folder name.
    ///
    /// # Errors
    /// [`Error::File`] when `root` is missing or not a folder, has no class folders, or a
    /// class folder holds no image file (all such classes are named).
    pub fn open(root: &Path) -> Result<ImageFolder> {
        let classes = class_folders(root)?;
        Self::scan(root, classes)
    }

    /// Opens a folder (e.g. the validation set) that must have exactly the class folders
    /// `classes` (e.g. the training set's); labels are positions in `classes`.
    ///
    /// # Errors
    /// As [`ImageFolder::open`], and [`Error::File`] listing the missing and unexpected
    /// class folders when the names differ.
    pub fn with_classes(root: &Path, classes: &[String]) -> Result<ImageFolder> {
        let found: BTreeSet<String> = class_folders(root)?.into_iter().collect();
        let wanted: BTreeSet<String> = classes.iter().cloned().collect();
        if found != wanted || wanted.len() != classes.len() {
            let missing: Vec<&String> = wanted.difference(&found).collect();
            let extra: Vec<&String> = found.difference(&wanted).collect();
            return Err(file_err(
                root,
                format!(
                    "class folders differ from the expected {} classes: missing {:?}, unexpected {:?}",
                    classes.len(),
                    missing,
                    extra
                ),
            ));
        }
        Self::scan(root, classes.to_vec())
    }

    fn scan(root: &Path, classes: Vec<String>) -> Result<ImageFolder> {
        let mut samples = Vec::new();
        let mut empty = Vec::new();
        for (label, class) in classes.iter().enumerate() {
            let files = images_under(&root.join(class))?;
            if files.is_empty() {
                empty.push(class.clone());
            }
            samples.extend(files.into_iter().map(|p| (p, label)));
        }
        if !empty.is_empty() {
            return Err(file_err(
                root,
                format!(
                    "class folder(s) {:?} hold no image files; expected files with extensions {}",
                    empty,
                    IMAGE_EXTENSIONS.join(", ")
                ),
            ));
        }
        Ok(ImageFolder {
            root: root.to_path_buf(),
            classes,
            samples,
        })
    }

    /// The folder this dataset was opened from.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `(path, label)` of every sample, in order.
    pub fn samples(&self) -> &[(PathBuf, usize)] {
        &self.samples
    }
}

impl Dataset for ImageFolder {
    fn len(&self) -> usize {
        self.samples.len()
    }
    fn classes(&self) -> &[String] {
        &self.classes
    }
    fn label(&self, index: usize) -> usize {
        self.samples[index].1
    }
    fn load(&self, index: usize) -> Result<RgbImage> {
        load_image(&self.samples[index].0)
    }
    fn load_draft(&self, index: usize, resize: usize) -> Result<RgbImage> {
        load_image_draft(&self.samples[index].0, Some(resize))
    }
    fn describe(&self, index: usize) -> String {
        self.samples[index].0.display().to_string()
    }
}
