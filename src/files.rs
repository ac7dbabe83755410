//! Reading the files a user points netcap at (extension sources, traced
//! binaries, debug files): regular files only, opened without blocking (a
//! FIFO would otherwise hang the open), and never more than a cap, so that
//! /dev/zero or a huge crafted file cannot run root's netcap out of memory.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Largest traced binary or debug file netcap reads whole.
pub const BINARY_MAX: u64 = 1 << 30;
/// Largest extension source file.
pub const SOURCE_MAX: u64 = 4 << 20;

/// The bytes of the regular file at `path`, at most `cap` of them.
pub fn read_regular(path: &Path, cap: u64) -> io::Result<Vec<u8>> {
    let mut file = File::options().read(true).custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC).open(path)?;
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"));
    }
    if meta.len() > cap {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} bytes, more than the {} netcap reads", meta.len(), cap),
        ));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // The file may grow after fstat: the cap holds whatever happens.
    file.by_ref().take(cap + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > cap {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("more than the {cap} bytes netcap reads")));
    }
    Ok(bytes)
}

/// The same as text.
pub fn read_regular_text(path: &Path, cap: u64) -> io::Result<String> {
    String::from_utf8(read_regular(path, cap)?)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8 text"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_fifos_and_oversized_files_are_refused() {
        let err = read_regular(Path::new("/dev/zero"), SOURCE_MAX).unwrap_err();
        assert_eq!(err.to_string(), "not a regular file");
        let dir = std::env::temp_dir().join(format!("netcap-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("fifo");
        let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        assert_eq!(read_regular(&fifo, SOURCE_MAX).unwrap_err().to_string(), "not a regular file");
        let big = dir.join("big");
        std::fs::write(&big, vec![b'x'; 100]).unwrap();
        assert!(read_regular(&big, 99).unwrap_err().to_string().contains("100 bytes"));
        assert_eq!(read_regular(&big, 100).unwrap().len(), 100);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
