//! The ffprobe JSON parser against real ffprobe 5.1 outputs checked in under tests/fixtures
//! (the four shared videos and a few generated edge cases). No ffmpeg needed.

use std::time::Duration;

use stereospot_media::{Hdr, MediaInfo, Rational, Rotation};

fn fixture(name: &str) -> MediaInfo {
    let path = format!("{}/tests/fixtures/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    MediaInfo::from_ffprobe_json(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn approx(d: Option<Duration>, secs: f64) -> bool {
    d.is_some_and(|d| (d.as_secs_f64() - secs).abs() < 1e-6)
}

#[test]
fn realshort_mp4_with_aac() {
    let info = fixture("realshort.mp4");
    assert_eq!(info.container, "mov,mp4,m4a,3gp,3g2,mj2");
    assert!(approx(info.duration, 1.199));
    let v = info.video.expect("video");
    assert_eq!((v.codec.as_str(), v.width, v.height), ("h264", 320, 240));
    assert_eq!(v.pix_fmt.as_deref(), Some("yuv420p"));
    assert_eq!(v.bit_depth, Some(8));
    assert_eq!(v.frame_rate, Some(Rational::new(45000, 1499)));
    assert_eq!(v.frame_count, Some(36));
    assert_eq!(v.rotation, Rotation::None);
    assert!(!v.variable_frame_rate);
    assert_eq!(v.time_base, Some(Rational::new(1, 90000)));
    assert_eq!(info.audio.len(), 1);
    let a = &info.audio[0];
    assert_eq!((a.index, a.codec.as_str()), (1, "aac"));
    assert_eq!((a.sample_rate, a.channels), (Some(48000), Some(1)));
    assert!(approx(a.duration, 1.173333));
}

#[test]
fn cockatoo_has_b_frames_and_no_audio() {
    let info = fixture("cockatoo_yuv420.mp4");
    let v = info.video.expect("video");
    assert_eq!((v.width, v.height), (1280, 720));
    assert_eq!(v.frame_rate, Some(Rational::new(20, 1)));
    assert_eq!(v.frame_count, Some(280));
    assert_eq!(v.has_b_frames, 2);
    assert_eq!(v.profile.as_deref(), Some("High"));
    assert!(info.audio.is_empty());
    assert!(approx(info.duration, 14.0));
}

#[test]
fn car_detection_fractional_rate_and_colour_tags() {
    let info = fixture("car-detection.mp4");
    let v = info.video.expect("video");
    assert_eq!(v.frame_rate, Some(Rational::new(25, 2)));
    assert_eq!(v.output_frame_rate(), Some(Rational::new(25, 2)));
    assert_eq!(v.frame_count, Some(377));
    assert_eq!(v.color.transfer.as_deref(), Some("smpte170m"));
    assert_eq!(v.hdr(), None);
    assert_eq!(info.audio.len(), 1);
    assert!(approx(info.duration, 30.208));
}

#[test]
fn book_mkv_has_no_frame_count_but_a_duration_tag_and_full_range() {
    let info = fixture("book.mkv");
    assert_eq!(info.container, "matroska,webm");
    assert_eq!(info.start_time, Some(0.033));
    let v = info.video.expect("video");
    assert_eq!(v.pix_fmt.as_deref(), Some("yuvj420p"));
    assert_eq!(v.color.range.as_deref(), Some("pc"));
    assert_eq!(
        v.frame_count, None,
        "Matroska does not announce frame counts"
    );
    assert!(
        approx(v.duration, 3.666),
        "from the DURATION tag: {:?}",
        v.duration
    );
    assert_eq!(v.start_time, Some(0.033));
    assert_eq!(v.time_base, Some(Rational::new(1, 1000)));
}

#[test]
fn display_matrix_rotation_both_ways() {
    // ffprobe prints the matrix angle counter-clockwise: -90 means "turn 90 degrees clockwise".
    let cw = fixture("generated_rotated_cw90.mp4").video.expect("video");
    assert_eq!(cw.rotation, Rotation::Cw90);
    assert_eq!((cw.width, cw.height), (320, 240));
    assert_eq!(cw.display_size(), (240, 320));
    let ccw = fixture("generated_rotated_ccw90.mp4").video.expect("video");
    assert_eq!(ccw.rotation, Rotation::Ccw90);
    assert_eq!(ccw.display_size(), (240, 320));
}

#[test]
fn ten_bit_hdr_is_recognised() {
    let v = fixture("generated_hdr10_pq.mp4").video.expect("video");
    assert_eq!(v.pix_fmt.as_deref(), Some("yuv420p10le"));
    assert_eq!(v.bit_depth, Some(10));
    assert_eq!(v.hdr(), Some(Hdr::Pq));
    assert_eq!(v.color.primaries.as_deref(), Some("bt2020"));
}

#[test]
fn variable_frame_rate_is_guessed_from_the_header() {
    let v = fixture("generated_vfr.mp4").video.expect("video");
    assert!(v.variable_frame_rate);
    assert_eq!(v.avg_frame_rate, Some(Rational::new(1200, 59)));
    assert_eq!(v.output_frame_rate(), Some(Rational::new(1200, 59)));
    assert_eq!(v.frame_count, Some(80));
}

#[test]
fn audio_only_has_no_video() {
    let info = fixture("generated_audio_only.m4a");
    assert!(info.video.is_none());
    assert_eq!(info.audio.len(), 1);
}
