//! The copy of the root image reports its bytes while it runs: a real squashfs unpacked
//! by the real `unsquashfs`, through the executor, with the progress it reports.
#![allow(clippy::unwrap_used)]

use std::fs;

use koompi_core::cmd::Runner;
use koompi_install::answers::{Finish, Source};
use koompi_install::exec::{self, Options, Secrets};
use koompi_install::plan::{Action, Plan, Step};
use koompi_testutil::require_programs;

#[test]
fn the_copy_reports_the_bytes_of_the_image_read() {
    let test = "the_copy_reports_the_bytes_of_the_image_read";
    if !require_programs(test, &["mksquashfs", "unsquashfs"]) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("root");
    fs::create_dir_all(src.join("usr/lib")).unwrap();
    // Incompressible, so that unpacking takes a moment and reads many bytes.
    let noise: Vec<u8> = (0u32..(24 << 20) / 4)
        .flat_map(|i| i.wrapping_mul(2_654_435_761).to_le_bytes())
        .collect();
    fs::write(src.join("usr/lib/big"), &noise).unwrap();
    fs::write(src.join("etc-hostname"), "koompi\n").unwrap();
    let image = work.path().join("airootfs.sfs");
    let ok = std::process::Command::new("mksquashfs")
        .arg(&src)
        .arg(&image)
        .args(["-noappend", "-no-progress", "-quiet", "-comp", "gzip"])
        .status()
        .unwrap();
    assert!(ok.success());
    let size = fs::metadata(&image).unwrap().len();
    let to = work.path().join("target");
    let plan = Plan {
        disk: "/dev/koompi-test-disk".into(),
        disk_description: "test".into(),
        root_partition: None,
        source: Source::Offline,
        encrypt: false,
        hostname: "koompi".into(),
        user: None,
        finish: Finish::Stay,
        steps: vec![Step {
            id: "base-system",
            title: "Copy".into(),
            optional: false,
            actions: vec![Action::CopyImage {
                image: image.display().to_string(),
                to: to.display().to_string(),
            }],
        }],
    };
    let mut seen = Vec::new();
    exec::execute(
        &plan,
        &Secrets::default(),
        &Runner::real(),
        &work.path().join("journal.json"),
        &Options::default(),
        &mut |p| seen.push((p.bytes_done, p.bytes_total)),
    )
    .unwrap();
    assert_eq!(fs::read(to.join("usr/lib/big")).unwrap(), noise);
    // The start of the step, then the bytes (at least the first look, right after the
    // unpacker started), never more than the image and never going back.
    assert_eq!(seen[0], (None, None));
    let bytes: Vec<(u64, u64)> = seen[1..]
        .iter()
        .map(|(d, t)| (d.unwrap(), t.unwrap()))
        .collect();
    assert!(!bytes.is_empty(), "no bytes reported: {seen:?}");
    assert!(bytes.iter().all(|&(d, t)| t == size && d <= t), "{bytes:?}");
    assert!(bytes.windows(2).all(|w| w[0].0 <= w[1].0), "{bytes:?}");
}
