//! `depth-preprocess` and `depth-forward` through the binary, against the reference's outputs
//! kept in the stereo crate's fixtures (scripts/stereo/make_fixtures.py).

use std::path::{Path, PathBuf};
use std::process::Command;

use stereospot_stereo::depth::npy::{self, NpyArray};

fn fixture(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../stereospot-stereo/tests/fixtures")
        .join(name);
    assert!(p.is_file(), "missing fixture {}", p.display());
    p
}

fn stereospot(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_stereospot"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run stereospot");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "stereospot {args:?} failed: {stderr}{}",
        if stderr.contains("ONNX Runtime") {
            "\n(ONNX Runtime is needed: run `./test` or `scripts/deps.sh test` first)"
        } else {
            ""
        }
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn depth_preprocess_matches_the_reference() {
    let dir = tempfile::tempdir().unwrap();
    // The reference read this picture with cv2.imread; PNG is lossless, so both see the same.
    let rgb: NpyArray<u8> = npy::read(&fixture("image_frame.npy")).unwrap();
    let (h, w) = (rgb.shape[0] as u32, rgb.shape[1] as u32);
    let png = dir.path().join("frame.png");
    image::RgbImage::from_raw(w, h, rgb.data)
        .unwrap()
        .save(&png)
        .unwrap();
    let out = dir.path().join("x.npy");
    let stdout = stereospot(&[
        "depth-preprocess",
        png.to_str().unwrap(),
        "--size",
        "140",
        "--output",
        out.to_str().unwrap(),
    ]);
    assert!(stdout.contains("1x3x140x252"), "{stdout}");
    let got: NpyArray<f32> = npy::read(&out).unwrap();
    let want: NpyArray<f32> = npy::read(&fixture("pre_frame_140.npy")).unwrap();
    assert_eq!(got.shape, want.shape);
    let err = got
        .data
        .iter()
        .zip(&want.data)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(err <= 1e-3, "max abs error {err}");
}

#[test]
fn depth_forward_matches_pytorch() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("y.npy");
    stereospot(&[
        "depth-forward",
        "--model",
        fixture("tiny_dav2.onnx").to_str().unwrap(),
        "--input",
        fixture("tiny_in_70x98.npy").to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ]);
    let got: NpyArray<f32> = npy::read(&out).unwrap();
    let want: NpyArray<f32> = npy::read(&fixture("tiny_out_70x98.npy")).unwrap();
    assert_eq!(got.shape, vec![1, 70, 98]);
    let (mut num, mut den) = (0f64, 0f64);
    for (a, b) in got.data.iter().zip(&want.data) {
        num += f64::from(a - b).powi(2);
        den += f64::from(*b).powi(2);
    }
    let rel = (num / den).sqrt();
    assert!(rel <= 1e-4, "relative L2 error {rel}");
}

#[test]
fn depth_commands_report_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.png");
    std::fs::write(&junk, b"not an image").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_stereospot"))
        .args(["depth-preprocess", junk.to_str().unwrap(), "--output"])
        .arg(dir.path().join("x.npy"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("junk.png"), "{stderr}");

    let out = Command::new(env!("CARGO_BIN_EXE_stereospot"))
        .args(["depth-forward", "--model"])
        .arg(dir.path().join("none.onnx"))
        .arg("--input")
        .arg(fixture("tiny_in_70x98.npy"))
        .arg("--output")
        .arg(dir.path().join("y.npy"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("none.onnx"), "{stderr}");
}
