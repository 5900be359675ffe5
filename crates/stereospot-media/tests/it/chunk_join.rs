//! Chunk then join (without conversion): the source's frames come back exactly (stream copy) or
//! within a PSNR bound (re-encode), with the same count and duration, audio iff the source had
//! it, and audio in sync.

use std::path::{Path, PathBuf};
use std::process::Command;

use stereospot_media::{
    AudioHandling, ChunkMethod, ChunkOptions, Chunked, DecodeCheck, JoinOptions, Joined,
    ReadOptions, ValidateOptions,
};

use crate::helpers::{Env, audio_packets, frame_md5s, frame_times, psnr, streams, video};

struct Case<'a> {
    source: &'a Path,
    target_secs: f64,
    method: ChunkMethod,
    expect_method: ChunkMethod,
    min_segments: usize,
    /// Compare decoded frames of the joined file and the source cropped to this size.
    crop: Option<(u32, u32)>,
}

impl<'a> Case<'a> {
    fn new(source: &'a Path, target_secs: f64, expect_method: ChunkMethod) -> Self {
        Case {
            source,
            target_secs,
            method: ChunkMethod::Auto,
            expect_method,
            min_segments: 2,
            crop: None,
        }
    }
}

/// Chunks, checks the segments, joins with the source's audio, checks the result.
async fn round_trip(env: &Env, case: Case<'_>) -> (Chunked, Joined) {
    let name = case.source.display().to_string();
    let validated = env
        .media
        .validate_with(
            case.source,
            &ValidateOptions {
                decode_check: DecodeCheck::Skip,
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let src_frames = validated.scan.frame_count();
    let src_duration = validated.scan.duration().expect("duration").as_secs_f64();
    let one_frame = src_duration / src_frames as f64;

    let seg_dir = env.path("segments");
    let chunked = env
        .media
        .chunk(
            case.source,
            &seg_dir,
            &ChunkOptions {
                target_duration: std::time::Duration::from_secs_f64(case.target_secs),
                method: case.method,
                validate: ValidateOptions {
                    decode_check: DecodeCheck::Skip,
                },
                ..ChunkOptions::default()
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{name}: chunk: {e}"));
    assert_eq!(
        chunked.method, case.expect_method,
        "{name}: {}",
        chunked.reason
    );
    assert!(
        chunked.segments.len() >= case.min_segments,
        "{name}: {} segments",
        chunked.segments.len()
    );
    assert_eq!(chunked.frame_count, src_frames, "{name}");
    let sum: u64 = chunked.segments.iter().map(|s| s.frame_count).sum();
    assert_eq!(
        sum, src_frames,
        "{name}: segment frame counts add up to the source's"
    );

    let total = chunked.segments.len() as u32;
    let mut next_first = 0;
    let mut next_start = 0.0;
    for (i, seg) in chunked.segments.iter().enumerate() {
        assert_eq!((seg.index, seg.total), (i as u32, total));
        assert_eq!(
            seg.first_frame, next_first,
            "{name}: segment {i} starts where the last ended"
        );
        assert!(
            (seg.start_time.as_secs_f64() - next_start).abs() < 1e-3,
            "{name}: segment {i} starts at {:?}, expected {next_start}",
            seg.start_time
        );
        next_first += seg.frame_count;
        next_start += seg.duration.as_secs_f64();
        assert_eq!(
            seg.path.file_name().and_then(|n| n.to_str()),
            Some(format!("segment_{i:05}.mp4").as_str())
        );
        // Independently decodable: the segment alone decodes to exactly its frames.
        assert_eq!(
            frame_md5s(&seg.path).len() as u64,
            seg.frame_count,
            "{name}: segment {i} decodes alone"
        );
        let st = streams(&seg.path);
        assert_eq!(st.len(), 1, "{name}: segments are video only");
        assert!(
            st[0].1.abs() < 1e-3,
            "{name}: segment {i} starts at {}",
            st[0].1
        );
        assert!(
            (st[0].2 - seg.duration.as_secs_f64()).abs() < 5e-3,
            "{name}: segment {i} file lasts {}, planned {:?}",
            st[0].2,
            seg.duration
        );
    }
    assert!(
        (next_start - src_duration).abs() < 1e-3,
        "{name}: durations add up"
    );

    let out = env.path("joined.mp4");
    let paths: Vec<PathBuf> = chunked.segments.iter().map(|s| s.path.clone()).collect();
    let joined = env
        .media
        .join(
            &paths,
            &out,
            &JoinOptions {
                audio_from: Some(case.source.to_path_buf()),
                timeout: None,
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{name}: join: {e}"));
    assert_eq!(joined.frame_count, src_frames, "{name}");

    let out_streams = streams(&out);
    let video_duration = out_streams
        .iter()
        .find(|s| s.0 == "video")
        .map(|s| s.2)
        .expect("video stream");
    assert!(
        (video_duration - src_duration).abs() <= one_frame + 1e-3,
        "{name}: joined video lasts {video_duration}, source {src_duration}"
    );
    let src_has_audio = !validated.info.audio.is_empty();
    let out_has_audio = out_streams.iter().any(|s| s.0 == "audio");
    assert_eq!(
        out_has_audio, src_has_audio,
        "{name}: audio iff the source had it"
    );
    assert_eq!(
        out_streams.iter().filter(|s| s.0 == "audio").count(),
        usize::from(src_has_audio),
        "{name}: the audio once"
    );
    if let AudioHandling::Copied(_) = joined.audio {
        assert_eq!(
            audio_packets(&out),
            audio_packets(case.source),
            "{name}: every audio packet once, no gap"
        );
    }

    let src_md5 = frame_md5s(case.source);
    let out_md5 = frame_md5s(&out);
    assert_eq!(out_md5.len(), src_md5.len(), "{name}: decoded frame count");
    match chunked.method {
        ChunkMethod::Copy => {
            assert!(
                out_md5 == src_md5,
                "{name}: stream copy must give identical frames"
            );
            let (a, b) = (frame_times(&out), frame_times(case.source));
            let worst = a
                .iter()
                .zip(&b)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0, f64::max);
            assert!(worst < 2e-3, "{name}: frame times moved by up to {worst}s");
        }
        _ => {
            let (avg, min) = psnr(&out, case.source, case.crop);
            assert!(
                avg >= 35.0 && min >= 25.0,
                "{name}: PSNR avg {avg:.1} min {min:.1}"
            );
        }
    }
    assert_eq!(
        std::fs::read_dir(env.work.path())
            .expect("dir")
            .filter(|e| e
                .as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().contains("partial")))
            .count(),
        0
    );
    env.assert_clean();
    (chunked, joined)
}

#[tokio::test]
async fn realshort_reencodes_two_segments_with_aac_copied() {
    let env = Env::new();
    let src = video("realshort.mp4");
    let (chunked, joined) = round_trip(&env, Case::new(&src, 0.5, ChunkMethod::Reencode)).await;
    assert_eq!(chunked.segments.len(), 2);
    assert!(
        chunked.reason.contains("no clean keyframe"),
        "{}",
        chunked.reason
    );
    assert_eq!(joined.audio, AudioHandling::Copied("aac".into()));
}

#[tokio::test]
async fn cockatoo_copies_at_keyframes_with_b_frames() {
    let env = Env::new();
    let src = video("cockatoo_yuv420.mp4");
    let (chunked, joined) = round_trip(&env, Case::new(&src, 5.0, ChunkMethod::Copy)).await;
    let counts: Vec<u64> = chunked.segments.iter().map(|s| s.frame_count).collect();
    assert_eq!(
        counts,
        vec![76, 84, 120],
        "cuts at the keyframes at 3.8 s and 8.0 s"
    );
    assert_eq!(joined.audio, AudioHandling::None);
}

#[tokio::test]
async fn car_detection_copies_with_audio() {
    let env = Env::new();
    let src = video("car-detection.mp4");
    let (chunked, joined) = round_trip(&env, Case::new(&src, 10.0, ChunkMethod::Copy)).await;
    assert_eq!(chunked.segments.len(), 3);
    assert_eq!(joined.audio, AudioHandling::Copied("aac".into()));
}

#[tokio::test]
async fn book_mkv_single_keyframe_reencodes() {
    let env = Env::new();
    let src = video("book.mkv");
    let (chunked, _) = round_trip(&env, Case::new(&src, 1.5, ChunkMethod::Reencode)).await;
    assert_eq!(chunked.segments.len(), 2);
    // Forcing a copy is refused with the reason.
    let err = env
        .media
        .chunk(
            &src,
            &env.path("copy"),
            &ChunkOptions {
                target_duration: std::time::Duration::from_secs_f64(1.5),
                method: ChunkMethod::Copy,
                ..ChunkOptions::default()
            },
        )
        .await
        .expect_err("no keyframes to cut at");
    assert_eq!(err.code(), "invalid_argument");
    assert!(err.to_string().contains("no clean keyframe"), "{err}");
    env.assert_clean();
}

#[tokio::test]
async fn a_whole_file_shorter_than_the_target_is_one_copied_segment() {
    let env = Env::new();
    let src = video("car-detection.mp4");
    let mut case = Case::new(&src, 30.0, ChunkMethod::Copy);
    case.min_segments = 1;
    let (chunked, _) = round_trip(&env, case).await;
    assert_eq!(chunked.segments.len(), 1);
}

#[tokio::test]
async fn rotated_source_keeps_its_rotation_through_copy() {
    let env = Env::new();
    let plain = env.generate(
        "plain.mp4",
        &[
            "testsrc=size=320x240:rate=25:duration=3",
            "sine=frequency=300:duration=3",
        ],
        &[
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "25",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
        ],
    );
    let rotated = env.path("rotated.mp4");
    env.ffmpeg(&[
        "-i",
        plain.to_str().expect("utf-8"),
        "-c",
        "copy",
        "-metadata:s:v:0",
        "rotate=-90",
        rotated.to_str().expect("utf-8"),
    ]);
    // frame_md5s decodes with autorotation: identical hashes mean identical upright pictures.
    let (chunked, joined) = round_trip(&env, Case::new(&rotated, 1.0, ChunkMethod::Copy)).await;
    assert_eq!(chunked.segments.len(), 3);
    let info = env.media.probe(&joined.path).await.expect("probe");
    assert_eq!(
        info.video.expect("video").rotation,
        stereospot_media::Rotation::Cw90
    );
}

#[tokio::test]
async fn rotated_source_is_upright_after_reencode() {
    let env = Env::new();
    let plain = env.generate(
        "plain.mp4",
        &["testsrc=size=320x240:rate=25:duration=2"],
        &[
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "50",
            "-pix_fmt",
            "yuv420p",
        ],
    );
    let rotated = env.path("rotated.mp4");
    env.ffmpeg(&[
        "-i",
        plain.to_str().expect("utf-8"),
        "-c",
        "copy",
        "-metadata:s:v:0",
        "rotate=90",
        rotated.to_str().expect("utf-8"),
    ]);
    let mut case = Case::new(&rotated, 1.0, ChunkMethod::Reencode);
    case.method = ChunkMethod::Reencode;
    let (chunked, _) = round_trip(&env, case).await;
    let seg = env
        .media
        .probe(&chunked.segments[0].path)
        .await
        .expect("probe");
    let v = seg.video.expect("video");
    assert_eq!(
        (v.width, v.height, v.rotation),
        (240, 320, stereospot_media::Rotation::None)
    );
}

#[tokio::test]
async fn variable_frame_rate_copy_keeps_frames_and_timestamps() {
    let env = Env::new();
    let vfr = env.generate(
        "vfr.mp4",
        &["testsrc2=size=320x240:rate=30:duration=4,select='if(lt(mod(n\\,30)\\,15)\\,1\\,not(mod(n\\,3)))'"],
        &["-fps_mode", "vfr", "-c:v", "libx264", "-preset", "ultrafast", "-g", "20"],
    );
    round_trip(&env, Case::new(&vfr, 1.0, ChunkMethod::Copy)).await;
}

#[tokio::test]
async fn variable_frame_rate_reencode_keeps_frames() {
    let env = Env::new();
    let vfr = env.generate(
        "vfr.mp4",
        &["testsrc2=size=320x240:rate=30:duration=4,select='if(lt(mod(n\\,30)\\,15)\\,1\\,not(mod(n\\,3)))'"],
        &["-fps_mode", "vfr", "-c:v", "libx264", "-preset", "ultrafast", "-g", "1000"],
    );
    let (chunked, _) = round_trip(&env, Case::new(&vfr, 1.0, ChunkMethod::Reencode)).await;
    // Re-encoding passes timestamps through: the segments are as variable as the source.
    let joined_times = frame_times(&env.path("joined.mp4"));
    let src_times = frame_times(&vfr);
    let worst = joined_times
        .iter()
        .zip(&src_times)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(worst < 2e-3, "frame times moved by {worst}");
    assert_eq!(chunked.frame_count, 80);
}

#[tokio::test]
async fn variable_frame_rate_with_b_frames_is_reencoded() {
    let env = Env::new();
    let vfr = env.generate(
        "vfrb.mp4",
        &["testsrc2=size=320x240:rate=30:duration=4,select='if(lt(mod(n\\,30)\\,15)\\,1\\,not(mod(n\\,3)))'"],
        &[
            "-fps_mode", "vfr", "-c:v", "libx264", "-preset", "veryfast", "-g", "20",
            "-keyint_min", "20", "-sc_threshold", "0",
        ],
    );
    let (chunked, _) = round_trip(&env, Case::new(&vfr, 1.0, ChunkMethod::Reencode)).await;
    assert!(chunked.reason.contains("B-frames"), "{}", chunked.reason);
    let joined_times = frame_times(&env.path("joined.mp4"));
    let src_times = frame_times(&vfr);
    let worst = joined_times
        .iter()
        .zip(&src_times)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(worst < 2e-3, "frame times moved by {worst}");
}

#[tokio::test]
async fn odd_size_vp9_copy_and_reencode() {
    let env = Env::new();
    let odd = env.generate(
        "odd.webm",
        &["testsrc=size=853x481:rate=25:duration=2"],
        &[
            "-c:v",
            "libvpx-vp9",
            "-pix_fmt",
            "yuv420p",
            "-deadline",
            "realtime",
            "-cpu-used",
            "8",
            "-g",
            "25",
        ],
    );
    round_trip(&env, Case::new(&odd, 1.0, ChunkMethod::Copy)).await;

    let env2 = Env::new();
    let mut case = Case::new(&odd, 1.0, ChunkMethod::Reencode);
    case.method = ChunkMethod::Reencode;
    case.crop = Some((852, 480));
    let (chunked, _) = round_trip(&env2, case).await;
    let v = env2
        .media
        .probe(&chunked.segments[0].path)
        .await
        .expect("probe")
        .video
        .expect("video");
    assert_eq!(
        (v.width, v.height),
        (852, 480),
        "re-encoded segments are even-sized"
    );
}

#[tokio::test]
async fn long_gop_with_b_frames_reencodes_at_forced_keyframes() {
    let env = Env::new();
    let src = env.generate(
        "longgop.mp4",
        &[
            "testsrc2=size=320x240:rate=25:duration=8",
            "sine=frequency=500:duration=8",
        ],
        &[
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "300",
            "-bf",
            "3",
            "-sc_threshold",
            "0",
            "-c:a",
            "aac",
        ],
    );
    let info = env.media.probe(&src).await.expect("probe");
    assert!(info.video.expect("video").has_b_frames > 0);
    let (chunked, _) = round_trip(&env, Case::new(&src, 2.0, ChunkMethod::Reencode)).await;
    let counts: Vec<u64> = chunked.segments.iter().map(|s| s.frame_count).collect();
    assert_eq!(counts, vec![50, 50, 50, 50]);
}

#[tokio::test]
async fn ten_bit_copy() {
    let env = Env::new();
    let src = env.generate(
        "10bit.mp4",
        &["testsrc2=size=320x240:rate=25:duration=2"],
        &[
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p10le",
            "-g",
            "25",
        ],
    );
    round_trip(&env, Case::new(&src, 1.0, ChunkMethod::Copy)).await;
}

/// A source whose video starts 0.52 s after its audio, with a white flash in the video and the
/// start of a tone in the audio at the same instant (2.52 s): the sync marker.
fn sync_source(env: &Env, name: &str, audio_codec: &[&str]) -> PathBuf {
    let out = env.path(name);
    let mut args: Vec<&str> = vec![
        "-itsoffset",
        "0.52",
        "-f",
        "lavfi",
        "-i",
        "color=c=black:s=320x240:r=25:d=4,drawbox=c=white:t=fill:enable='between(t,2,2.02)'",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=1000:sample_rate=48000:duration=5,volume=volume=0:enable='lt(t,2.52)'",
        "-map",
        "0:v",
        "-map",
        "1:a",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-g",
        "25",
        "-pix_fmt",
        "yuv420p",
    ];
    args.extend_from_slice(audio_codec);
    let out_s = out.to_str().expect("utf-8").to_string();
    args.push(&out_s);
    env.ffmpeg(&args);
    out
}

/// (time of the brightest frame, time the tone starts) on the file's own timeline.
async fn sync_marks(env: &Env, path: &Path) -> (f64, f64) {
    let media = env.media.clone();
    let p = path.to_path_buf();
    let brightest = tokio::task::spawn_blocking(move || {
        let r = stereospot_media::FrameReader::open(&media, &p, &ReadOptions::default())
            .expect("reader");
        let mut best = (0u64, 0u64);
        for (i, f) in r.enumerate() {
            let sum: u64 = f.expect("frame").data.iter().map(|b| u64::from(*b)).sum();
            if sum > best.1 {
                best = (i as u64, sum);
            }
        }
        best.0
    })
    .await
    .expect("join");
    let st = streams(path);
    let v_start = st.iter().find(|s| s.0 == "video").expect("video").1;
    let a_start = st.iter().find(|s| s.0 == "audio").expect("audio").1;
    let flash = v_start + frame_times(path)[brightest as usize];

    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-i"])
        .arg(path)
        .args([
            "-map", "0:a:0", "-ac", "1", "-ar", "48000", "-f", "s16le", "-",
        ])
        .output()
        .expect("ffmpeg");
    assert!(out.status.success());
    let onset = out
        .stdout
        .chunks_exact(2)
        .position(|s| i16::from_le_bytes([s[0], s[1]]).unsigned_abs() > 2000)
        .expect("tone");
    (flash, a_start + onset as f64 / 48000.0)
}

async fn check_sync(env: &Env, src: &Path, expect: &str) {
    let (src_flash, src_tone) = sync_marks(env, src).await;
    assert!(
        (src_flash - src_tone).abs() < 0.03,
        "the measurement itself: flash {src_flash}, tone {src_tone}"
    );
    let (chunked, joined) = round_trip(env, Case::new(src, 1.0, ChunkMethod::Copy)).await;
    assert!(chunked.segments.len() >= 3);
    match (&joined.audio, expect) {
        (AudioHandling::Copied(_), "copy") | (AudioHandling::ReencodedToAac(_), "aac") => {}
        other => panic!("unexpected audio handling {other:?}"),
    }
    let (flash, tone) = sync_marks(env, &joined.path).await;
    let drift = (tone - flash) - (src_tone - src_flash);
    assert!(
        drift.abs() < 0.04,
        "A/V offset changed by {drift:.3}s (more than one frame at 25 fps)"
    );
}

#[tokio::test]
async fn audio_stays_in_sync_when_copied() {
    let env = Env::new();
    let src = sync_source(&env, "sync.mp4", &["-c:a", "aac"]);
    check_sync(&env, &src, "copy").await;
}

#[tokio::test]
async fn audio_stays_in_sync_when_reencoded_to_aac() {
    let env = Env::new();
    let src = sync_source(&env, "sync.mkv", &["-c:a", "flac"]);
    check_sync(&env, &src, "aac").await;
}

#[tokio::test]
async fn join_rejects_bad_segment_lists_and_cleans_up() {
    let env = Env::new();
    let out = env.path("out.mp4");
    let err = env
        .media
        .join(&[], &out, &JoinOptions::default())
        .await
        .expect_err("empty");
    assert_eq!(err.code(), "invalid_argument");

    let a = env.generate(
        "a.mp4",
        &["testsrc2=size=320x240:rate=25:duration=1"],
        &["-c:v", "libx264", "-preset", "ultrafast"],
    );
    let b = env.generate(
        "b.mp4",
        &["testsrc2=size=160x120:rate=25:duration=1"],
        &["-c:v", "libx264", "-preset", "ultrafast"],
    );
    let err = env
        .media
        .join(&[a.clone(), b], &out, &JoinOptions::default())
        .await
        .expect_err("mismatch");
    assert_eq!(err.code(), "invalid_argument");
    assert!(err.to_string().contains("160x120"), "{err}");

    // Same size, different encoder configuration (High profile, CABAC): a copy would not decode.
    let c = env.generate(
        "c.mp4",
        &["testsrc2=size=320x240:rate=25:duration=1"],
        &[
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-profile:v",
            "high",
            "-pix_fmt",
            "yuv420p",
        ],
    );
    let err = env
        .media
        .join(&[a.clone(), c], &out, &JoinOptions::default())
        .await
        .expect_err("different configuration");
    assert_eq!(err.code(), "invalid_argument");
    assert!(err.to_string().contains("encoded differently"), "{err}");

    let junk = env.path("junk.mp4");
    std::fs::write(&junk, b"<html>").expect("write");
    let err = env
        .media
        .join(&[a.clone(), junk], &out, &JoinOptions::default())
        .await
        .expect_err("junk");
    assert_eq!(err.code(), "invalid_argument");
    assert!(!out.exists());

    // Paths with spaces and quotes are fine: the list only names our own links.
    let odd_name = env.path("it's a \"segment\".mp4");
    std::fs::copy(&a, &odd_name).expect("copy");
    let joined = env
        .media
        .join(&[odd_name, a], &out, &JoinOptions::default())
        .await
        .expect("join");
    assert_eq!(joined.frame_count, 50);
    assert_eq!(joined.audio, AudioHandling::None);
    env.assert_clean();
}

/// The pipeline's shape: chunk, convert every segment through the frame reader and writer (here
/// the "conversion" inverts the picture), join the converted segments with the source's audio.
#[tokio::test]
async fn converted_segments_join_in_sync() {
    let env = Env::new();
    let src = sync_source(&env, "sync.mp4", &["-c:a", "aac"]);
    let (src_flash, src_tone) = sync_marks(&env, &src).await;
    let chunked = env
        .media
        .chunk(
            &src,
            &env.path("segments"),
            &ChunkOptions {
                target_duration: std::time::Duration::from_secs(1),
                ..ChunkOptions::default()
            },
        )
        .await
        .expect("chunk");
    assert!(chunked.segments.len() >= 3);
    let media = env.media.clone();
    let segments = chunked.segments.clone();
    let out_dir = env.path("converted");
    std::fs::create_dir_all(&out_dir).expect("dir");
    let converted: Vec<PathBuf> = tokio::task::spawn_blocking(move || {
        segments
            .iter()
            .map(|seg| {
                let reader =
                    stereospot_media::FrameReader::open(&media, &seg.path, &ReadOptions::default())
                        .expect("reader");
                let source = reader.source().clone();
                let out = out_dir.join(format!("{:05}.mp4", seg.index));
                let mut writer = stereospot_media::FrameWriter::create(
                    &media,
                    &out,
                    source.width,
                    source.height,
                    source.frame_rate,
                    &stereospot_media::EncodeOptions {
                        preset: "ultrafast".into(),
                        ..Default::default()
                    },
                )
                .expect("writer");
                for f in reader {
                    let mut f = f.expect("frame");
                    f.data.iter_mut().for_each(|b| *b = 255 - *b);
                    writer.write_frame(&f).expect("write");
                }
                let written = writer.finish().expect("finish");
                assert_eq!(written.frames, seg.frame_count);
                out
            })
            .collect()
    })
    .await
    .expect("join");
    let out = env.path("final.mp4");
    let joined = env
        .media
        .join(
            &converted,
            &out,
            &JoinOptions {
                audio_from: Some(src.clone()),
                timeout: None,
            },
        )
        .await
        .expect("join");
    assert_eq!(joined.frame_count, chunked.frame_count);
    assert_eq!(joined.audio, AudioHandling::Copied("aac".into()));
    let src_duration: f64 = chunked
        .segments
        .iter()
        .map(|s| s.duration.as_secs_f64())
        .sum();
    let out_duration = streams(&out)
        .iter()
        .find(|s| s.0 == "video")
        .expect("video")
        .2;
    assert!(
        (out_duration - src_duration).abs() <= 0.04,
        "{out_duration} vs {src_duration}"
    );

    // Inverted: the flash is now the darkest frame, so measure on an inverted copy.
    let back = env.path("back.mp4");
    env.ffmpeg(&[
        "-i",
        out.to_str().expect("utf-8"),
        "-vf",
        "negate",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-c:a",
        "copy",
        back.to_str().expect("utf-8"),
    ]);
    let (flash, tone) = sync_marks(&env, &back).await;
    let drift = (tone - flash) - (src_tone - src_flash);
    assert!(
        drift.abs() < 0.04,
        "A/V offset changed by {drift:.3}s after conversion"
    );
    env.assert_clean();
}
