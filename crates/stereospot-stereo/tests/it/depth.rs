//! Depth: preprocessing, forward and the whole `estimate` against the reference's outputs.

use stereospot_stereo::depth::DepthModel;
use stereospot_stereo::depth::onnx::{OnnxDepthModel, OnnxOptions};
use stereospot_stereo::depth::postprocess::resize_bilinear_align_corners;
use stereospot_stereo::depth::preprocess::{input_size, preprocess};
use stereospot_stereo::{RgbFrame, StereoError};

use crate::helpers::*;

#[test]
fn input_sizes_match_the_reference_table() {
    let text = std::fs::read_to_string(fixture("resize_sizes.json")).unwrap();
    let rows: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    assert!(rows.len() > 100);
    for r in rows {
        let get = |k: &str| r[k].as_u64().unwrap() as u32;
        let (w, h, size) = (get("width"), get("height"), get("size"));
        let want = (get("new_width"), get("new_height"));
        match input_size(w, h, size) {
            Ok(got) => assert_eq!(got, want, "{w}x{h} at {size}"),
            // Refused only where the tensor would be absurd (1000:1 frames at large sizes).
            Err(e) => assert!(
                u64::from(want.0) * u64::from(want.1) > 64 * 1024 * 1024,
                "{w}x{h} at {size}: {e}"
            ),
        }
    }
}

#[test]
fn preprocessing_matches_the_reference() {
    for (image_name, tensor_name) in [
        ("image_cones.npy", "pre_cones_140.npy"),
        ("image_frame.npy", "pre_frame_140.npy"),
    ] {
        let frame = image(image_name);
        let want = f32s(tensor_name);
        let got = preprocess(&frame, 140).unwrap();
        assert_eq!(got.shape().to_vec(), want.shape, "{tensor_name}");
        assert_eq!(
            (got.source_width, got.source_height),
            (frame.width, frame.height)
        );
        let err = max_abs(&got.data, &want.data);
        eprintln!(
            "preprocess {image_name} {}x{} -> {}x{}: max abs error {err:.2e}",
            frame.width, frame.height, got.width, got.height
        );
        assert!(err <= 1e-3, "{tensor_name}: max abs error {err}");
    }
}

#[test]
fn non_square_geometry_keeps_aspect_and_patch_multiples() {
    // 1080p landscape and portrait, the sizes the benchmark tries.
    for (w, h) in [(1920u32, 1080u32), (1080, 1920), (768, 432)] {
        for size in [392, 448, 518] {
            let frame = RgbFrame::new(w, h);
            let input = preprocess(&frame, size).unwrap();
            assert_eq!(input.width % 14, 0);
            assert_eq!(input.height % 14, 0);
            let short = input.width.min(input.height);
            // The reference rounds size/14 half to even and never goes below size.
            let want_short = if size % 14 == 0 {
                size
            } else {
                size.div_ceil(14) * 14
            };
            assert_eq!(short, want_short, "{w}x{h} at {size}");
            let aspect = f64::from(w) / f64::from(h);
            let got = f64::from(input.width) / f64::from(input.height);
            assert!(
                (got / aspect - 1.0).abs() < 0.02,
                "{w}x{h} at {size}: {got} vs {aspect}"
            );
            assert_eq!(input.data.len(), 3 * (input.width * input.height) as usize);
        }
    }
}

#[test]
fn upsampling_matches_pytorch() {
    let src = f32s("upsample_in.npy");
    let want = f32s("upsample_out.npy");
    let (h, w) = (src.shape[1], src.shape[2]);
    let (oh, ow) = (want.shape[1], want.shape[2]);
    let got = resize_bilinear_align_corners(&src.data, w, h, ow, oh);
    let err = max_abs(&got, &want.data);
    eprintln!("upsample {w}x{h} -> {ow}x{oh}: max abs error {err:.2e}");
    assert!(err <= 1e-5, "max abs error {err}");
}

#[test]
fn tiny_model_forward_matches_pytorch() {
    require_onnxruntime();
    let mut model = OnnxDepthModel::load(&tiny_model(), &OnnxOptions::default()).unwrap();
    for (h, w) in [(70, 98), (42, 56)] {
        let input = f32s(&format!("tiny_in_{h}x{w}.npy"));
        let want = f32s(&format!("tiny_out_{h}x{w}.npy"));
        let out = model.forward([1, 3, h, w], &input.data).unwrap();
        assert_eq!(out.shape, want.shape);
        let err = rel_l2(&out.data, &want.data);
        eprintln!("forward {h}x{w}: relative L2 error {err:.2e}");
        assert!(err <= 1e-4, "{h}x{w}: relative L2 error {err}");
    }
}

#[test]
fn estimate_matches_the_reference_infer_image() {
    require_onnxruntime();
    let opts = OnnxOptions {
        input_size: 140,
        ..OnnxOptions::default()
    };
    let mut model = OnnxDepthModel::load(&tiny_model(), &opts).unwrap();
    assert_eq!(model.name(), "onnx:tiny_dav2");
    let frame = image("image_frame.npy");
    let want = f32s("infer_frame_140.npy");
    let depth = model.estimate(&frame).unwrap();
    assert_eq!((depth.width, depth.height), (frame.width, frame.height));
    assert_eq!(
        want.shape,
        vec![frame.height as usize, frame.width as usize]
    );
    let err = rel_l2(&depth.data, &want.data);
    eprintln!("estimate (infer_image) 160x90 at 140: relative L2 error {err:.2e}");
    assert!(err <= 1e-4, "relative L2 error {err}");
}

#[test]
fn estimate_gives_a_frame_sized_non_negative_map() {
    require_onnxruntime();
    let mut model: Box<dyn DepthModel> =
        Box::new(OnnxDepthModel::load(&tiny_model(), &OnnxOptions::default()).unwrap());
    let cones = image("image_cones.npy");
    // 1080p (518 x 924 tensor), a portrait and the cones picture.
    let mut big = RgbFrame::new(1920, 1080);
    for (i, px) in big.data.chunks_exact_mut(3).enumerate() {
        let (x, y) = (i % 1920, i / 1920);
        px.copy_from_slice(&[(x / 8) as u8, (y / 5) as u8, ((x + y) / 12) as u8]);
    }
    let mut portrait = RgbFrame::new(90, 160);
    portrait
        .data
        .iter_mut()
        .enumerate()
        .for_each(|(i, v)| *v = (i % 251) as u8);
    for frame in [&big, &portrait, &cones] {
        let depth = model.estimate(frame).unwrap();
        assert_eq!((depth.width, depth.height), (frame.width, frame.height));
        assert!(depth.data.iter().all(|v| v.is_finite() && *v >= 0.0));
        let (lo, hi) = depth.min_max().unwrap();
        assert!(hi > lo, "depth is constant");
    }
}

#[test]
fn missing_and_broken_model_files_are_clear_errors() {
    require_onnxruntime();
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing.onnx");
    let err = OnnxDepthModel::load(&missing, &OnnxOptions::default()).unwrap_err();
    assert!(matches!(err, StereoError::ModelMissing(_)), "{err}");
    let broken = dir.path().join("broken.onnx");
    std::fs::write(&broken, b"this is not a protobuf").unwrap();
    let err = OnnxDepthModel::load(&broken, &OnnxOptions::default()).unwrap_err();
    assert!(matches!(err, StereoError::Model { .. }), "{err}");
    assert!(err.to_string().contains("broken.onnx"), "{err}");

    let mut model = OnnxDepthModel::load(&tiny_model(), &OnnxOptions::default()).unwrap();
    assert!(model.forward([1, 3, 15, 28], &[0.0; 3 * 15 * 28]).is_err());
    assert!(model.forward([1, 3, 14, 28], &[0.0; 10]).is_err());
}

#[test]
fn open_resolves_names_and_loads_the_model() {
    require_onnxruntime();
    use stereospot_stereo::depth::model_files::{ModelChoice, ModelPrecision, ResolveOptions};
    let dir = tempfile::tempdir().unwrap();
    let resolve = ResolveOptions {
        weights_dir: Some(dir.path().to_path_buf()),
        hf_cache: Some(dir.path().join("hub")),
        offline: true,
        precision: ModelPrecision::Int8,
        ..ResolveOptions::default()
    };
    // Offline and nowhere to be found: a clear error, no download.
    let err = OnnxDepthModel::open(ModelChoice::Small, None, &resolve, &OnnxOptions::default())
        .unwrap_err();
    assert!(matches!(err, StereoError::ModelMissing(_)), "{err}");
    // Placed where the error says: found and loaded.
    let place = dir
        .path()
        .join("onnx-community/depth-anything-v2-small/onnx/model_int8_matmul.onnx");
    std::fs::create_dir_all(place.parent().unwrap()).unwrap();
    std::fs::copy(tiny_model(), &place).unwrap();
    let model =
        OnnxDepthModel::open(ModelChoice::Small, None, &resolve, &OnnxOptions::default()).unwrap();
    assert_eq!(model.name(), "onnx:depth-anything-v2-small-int8");
    assert_eq!(model.path(), place);
}
