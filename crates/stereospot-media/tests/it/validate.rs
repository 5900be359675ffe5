//! Validation: good files pass with exact frame counts, bad ones fail fast with their own code and
//! leave no temp files.

use std::path::Path;
use std::time::{Duration, Instant};

use stereospot_media::{ChunkOptions, DecodeCheck, MediaError, ValidateOptions};

use crate::helpers::{Env, SHARED, video};

/// Bad input must be rejected within this time (each case takes well under a second here).
const BOUND: Duration = Duration::from_secs(15);

async fn expect_code(env: &Env, path: &Path, code: &str) -> MediaError {
    let started = Instant::now();
    let err = env
        .media
        .validate(path)
        .await
        .expect_err("validation must fail");
    assert_eq!(err.code(), code, "{}: {err}", path.display());
    assert!(
        err.is_input_error() || code == "timeout",
        "{code} is about the input"
    );
    assert!(!err.to_string().ends_with('.'));
    assert!(started.elapsed() < BOUND, "took {:?}", started.elapsed());

    // The chunker validates first: same error, and no segment may appear.
    let out = env.path("segments");
    let err2 = env
        .media
        .chunk(path, &out, &ChunkOptions::default())
        .await
        .expect_err("chunking must fail");
    assert_eq!(err2.code(), code);
    assert!(
        !out.exists() || std::fs::read_dir(&out).expect("dir").next().is_none(),
        "segments left behind"
    );
    env.assert_clean();
    err
}

/// Deterministic noise (xorshift), so the "random bytes" case is stable.
fn noise(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn write(env: &Env, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let p = env.path(name);
    std::fs::write(&p, bytes).expect("write");
    p
}

fn truncated_copy(env: &Env, src: &Path, name: &str) -> std::path::PathBuf {
    let bytes = std::fs::read(src).expect("read");
    write(env, name, &bytes[..bytes.len() / 2])
}

#[tokio::test]
async fn shared_videos_validate_with_exact_frame_counts() {
    let env = Env::new();
    let expected = [
        ("realshort.mp4", 36, 1),
        ("cockatoo_yuv420.mp4", 280, 0),
        ("car-detection.mp4", 377, 1),
        ("book.mkv", 109, 0),
    ];
    assert_eq!(expected.len(), SHARED.len());
    for (name, frames, audio) in expected {
        let v = env
            .media
            .validate_with(&video(name), &ValidateOptions::default())
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let vs = v.video().expect("video");
        assert_eq!(vs.frame_count, Some(frames), "{name}");
        assert_eq!(v.scan.frame_count(), frames, "{name}");
        assert!(!vs.variable_frame_rate, "{name} is constant frame rate");
        assert_eq!(v.info.audio.len(), audio, "{name}");
        assert!(v.info.duration.is_some(), "{name}");
    }
    env.assert_clean();
}

#[tokio::test]
async fn empty_file() {
    let env = Env::new();
    let p = write(&env, "empty.mp4", b"");
    expect_code(&env, &p, "empty_file").await;
}

#[tokio::test]
async fn random_bytes_named_mp4() {
    let env = Env::new();
    let p = write(&env, "noise.mp4", &noise(1024));
    let err = expect_code(&env, &p, "not_media").await;
    assert!(err.to_string().contains("not a video file"), "{err}");
}

#[tokio::test]
async fn html_page_named_mp4() {
    let env = Env::new();
    let p = write(
        &env,
        "page.mp4",
        b"<!DOCTYPE html>\n<html><head><title>Not found</title></head><body>404</body></html>\n",
    );
    let err = expect_code(&env, &p, "not_media").await;
    assert!(err.to_string().contains("HTML"), "{err}");
}

#[tokio::test]
async fn truncated_at_half_moov_at_end() {
    // realshort.mp4 keeps its index at the end: half a file has none.
    let env = Env::new();
    let p = truncated_copy(&env, &video("realshort.mp4"), "half.mp4");
    let err = expect_code(&env, &p, "corrupt").await;
    assert!(err.to_string().contains("moov"), "{err}");
}

#[tokio::test]
async fn truncated_at_half_faststart() {
    // With the index first, ffprobe opens the file happily: the packet scan finds the cut.
    let env = Env::new();
    let fs = env.path("faststart.mp4");
    env.ffmpeg(&[
        "-i",
        video("car-detection.mp4").to_str().expect("utf-8"),
        "-c",
        "copy",
        "-movflags",
        "+faststart",
        fs.to_str().expect("utf-8"),
    ]);
    let p = truncated_copy(&env, &fs, "half_faststart.mp4");
    expect_code(&env, &p, "corrupt").await;
}

#[tokio::test]
async fn truncated_at_half_matroska() {
    let env = Env::new();
    let p = truncated_copy(&env, &video("book.mkv"), "half.mkv");
    expect_code(&env, &p, "corrupt").await;
}

#[tokio::test]
async fn damaged_in_the_middle_is_caught_by_decoding() {
    let env = Env::new();
    let mut bytes = std::fs::read(video("car-detection.mp4")).expect("read");
    let mid = bytes.len() / 2;
    bytes[mid..mid + 20_000].copy_from_slice(&noise(20_000));
    let p = write(&env, "damaged.mp4", &bytes);
    let started = Instant::now();
    let err = env
        .media
        .validate_with(
            &p,
            &ValidateOptions {
                decode_check: DecodeCheck::Full,
            },
        )
        .await
        .expect_err("damaged");
    assert_eq!(err.code(), "corrupt", "{err}");
    assert!(started.elapsed() < BOUND);
    env.assert_clean();
}

#[tokio::test]
async fn intact_container_with_undecodable_video() {
    // The MP4 index is fine, every frame's payload is noise: ffprobe reads the header happily.
    let env = Env::new();
    let mut bytes = std::fs::read(video("cockatoo_yuv420.mp4")).expect("read");
    let mut pos = 0;
    while pos + 8 <= bytes.len() {
        let size = u32::from_be_bytes(bytes[pos..pos + 4].try_into().expect("4 bytes")) as usize;
        if &bytes[pos + 4..pos + 8] == b"mdat" {
            let n = size - 8;
            bytes[pos + 8..pos + size].copy_from_slice(&noise(n));
        }
        pos += size;
    }
    let p = write(&env, "noise_payload.mp4", &bytes);
    expect_code(&env, &p, "corrupt").await;
}

#[tokio::test]
async fn audio_only_file() {
    let env = Env::new();
    let p = env.generate(
        "song.mp4",
        &["sine=frequency=440:duration=2"],
        &["-c:a", "aac"],
    );
    let err = expect_code(&env, &p, "no_video_stream").await;
    assert!(err.to_string().contains("audio-only"), "{err}");
}

#[tokio::test]
async fn hls_playlist_named_mp4_does_not_reach_the_referenced_file() {
    let env = Env::new();
    // The playlist points at a real, valid video: if ffmpeg followed it, probing would succeed.
    let target = video("realshort.mp4");
    let playlist = format!(
        "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:1.2,\nfile://{}\n#EXT-X-ENDLIST\n",
        target.display()
    );
    let p = write(&env, "playlist.mp4", playlist.as_bytes());
    let err = expect_code(&env, &p, "forbidden_reference").await;
    assert!(err.to_string().contains("HLS"), "{err}");
    // The (blocking) frame reader refuses it too.
    let media = env.media.clone();
    let code = tokio::task::spawn_blocking(move || {
        stereospot_media::FrameReader::open(&media, &p, &Default::default())
            .err()
            .map(|e| e.code())
    })
    .await
    .expect("join");
    assert_eq!(code, Some("forbidden_reference"));
}

#[tokio::test]
async fn concat_script_named_mp4() {
    let env = Env::new();
    let script = format!(
        "ffconcat version 1.0\nfile '{}'\n",
        video("realshort.mp4").display()
    );
    let p = write(&env, "script.mp4", script.as_bytes());
    expect_code(&env, &p, "forbidden_reference").await;
}

#[tokio::test]
async fn sdp_session_is_stopped_by_the_demuxer_whitelist() {
    // No sniffing rule knows SDP: this one is stopped by `-format_whitelist` alone (an SDP file
    // would make ffmpeg open network sockets).
    let env = Env::new();
    let sdp = "v=0\no=- 0 0 IN IP4 127.0.0.1\ns=x\nc=IN IP4 127.0.0.1\nt=0 0\nm=video 5004 RTP/AVP 96\na=rtpmap:96 H264/90000\n";
    let p = write(&env, "session.mp4", sdp.as_bytes());
    expect_code(&env, &p, "unsupported_container").await;
}

#[tokio::test]
async fn limits_are_enforced_with_their_own_codes() {
    let cockatoo = video("cockatoo_yuv420.mp4");
    let env = Env::with(|c| c.limits.max_long_side = 1000);
    let err = env.media.validate(&cockatoo).await.expect_err("too large");
    assert_eq!(err.code(), "too_large_resolution");
    assert!(err.to_string().contains("1280x720"), "{err}");

    let env = Env::with(|c| c.limits.max_duration = Duration::from_secs(10));
    let err = env.media.validate(&cockatoo).await.expect_err("too long");
    assert_eq!(err.code(), "too_long");
    assert!(err.to_string().contains("0:00:14"), "{err}");

    let env = Env::with(|c| c.limits.max_frame_rate = 15.0);
    let err = env.media.validate(&cockatoo).await.expect_err("too fast");
    assert_eq!(err.code(), "unsupported_frame_rate");
    env.assert_clean();
}

#[tokio::test]
async fn missing_programs_say_what_to_install() {
    let env = Env::with(|c| c.ffprobe = "/nonexistent/ffprobe".into());
    let err = env
        .media
        .validate(&video("realshort.mp4"))
        .await
        .expect_err("no ffprobe");
    assert_eq!(err.code(), "ffprobe_missing");
    assert!(err.to_string().contains("apt-get install ffmpeg"));

    let env = Env::with(|c| c.ffmpeg = "/nonexistent/ffmpeg".into());
    let err = env
        .media
        .validate(&video("realshort.mp4"))
        .await
        .expect_err("no ffmpeg");
    assert_eq!(err.code(), "ffmpeg_missing");
    assert!(!err.is_input_error());
    env.assert_clean();
}

#[tokio::test]
async fn a_timeout_kills_the_work_and_cleans_up() {
    // Re-encoding 14 s of 720p takes seconds; give it a quarter of one.
    let env = Env::with(|c| {
        c.timeouts.work_base = Duration::from_millis(250);
        c.timeouts.encode_per_media_second = Duration::ZERO;
    });
    let out = env.path("segments");
    let started = Instant::now();
    let err = env
        .media
        .chunk(
            &video("cockatoo_yuv420.mp4"),
            &out,
            &ChunkOptions {
                method: stereospot_media::ChunkMethod::Reencode,
                validate: ValidateOptions {
                    decode_check: DecodeCheck::Skip,
                },
                ..ChunkOptions::default()
            },
        )
        .await
        .expect_err("must time out");
    assert_eq!(err.code(), "timeout", "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(!out.exists() || std::fs::read_dir(&out).expect("dir").next().is_none());
    env.assert_clean();
}
