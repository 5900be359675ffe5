//! `stereospot inference-server`: the contract over HTTP, with the in-process engine (fast
//! depth) behind it, on a port-0 listener and a temp data directory.

use stereospot::inference_cmd::{InferenceServerArgs, ServerBackendArg, start};
use stereospot::model_args::{DepthArg, ModelArgs};
use stereospot_core::config::Settings;
use stereospot_core::{JobId, ObjectKey, StereoMode};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inference_server_subcommand_keeps_the_contract() {
    let data = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let args = InferenceServerArgs {
        data_dir: Some(data.path().to_path_buf()),
        bind: "127.0.0.1:0".parse().unwrap(),
        backend: ServerBackendArg::Local,
        work_dir: Some(work.path().to_path_buf()),
        model: ModelArgs {
            depth: DepthArg::Fast,
            ..ModelArgs::default()
        },
    };
    let listener = tokio::net::TcpListener::bind(args.bind).await.unwrap();
    let settings = Settings::from_lookup(|_| None).unwrap();
    let server = start(&settings, &args, listener).await.unwrap();
    let url = format!("http://{}", server.addr);
    let platform = server.local.platform.clone();
    let client = reqwest::Client::new();

    let ping = client.get(format!("{url}/ping")).send().await.unwrap();
    assert_eq!(ping.status(), 200);

    let post = |body: String| {
        let client = client.clone();
        let url = format!("{url}/invocations");
        async move {
            let r = client
                .post(url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let json: serde_json::Value = r.json().await.unwrap();
            (status, json)
        }
    };
    let (inb, outb) = (&platform.buckets.input, &platform.buckets.output);
    let uris = |job_id: JobId| {
        let seg = ObjectKey::segment(job_id, 0, 1, StereoMode::Sbs)
            .unwrap()
            .to_string();
        let out = ObjectKey::segment_output(job_id, 0).unwrap().to_string();
        (seg, out)
    };
    let good = JobId::from_parts(1_700_000_000_000, [1; 10]);
    let bad = JobId::from_parts(1_700_000_000_000, [2; 10]);
    let (seg, out) = uris(good);
    let (bad_seg, bad_out) = uris(bad);

    // Bad bodies: 400 with a JSON error.
    for body in [
        "{".to_string(),
        "[]".to_string(),
        r#"{"s3_input_uri":"s3://a/b"}"#.to_string(),
        format!(
            r#"{{"s3_input_uri":"s3://{inb}/{seg}","s3_output_uri":"s3://{outb}/{out}","mode":"3d"}}"#
        ),
        format!(
            r#"{{"s3_input_uri":"https://example.com/x.mp4","s3_output_uri":"s3://{outb}/{out}"}}"#
        ),
    ] {
        let (status, json) = post(body.clone()).await;
        assert_eq!(status, 400, "{body}: {json}");
        assert!(
            json["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{json}"
        );
    }

    // A segment that is not a video: the engine fails, 500 with the reason, no output.
    platform
        .storage
        .put_bytes(
            inb,
            &bad_seg,
            bytes::Bytes::from_static(b"<html>not a video</html>"),
        )
        .await
        .unwrap();
    let (status, json) = post(format!(
        r#"{{"s3_input_uri":"s3://{inb}/{bad_seg}","s3_output_uri":"s3://{outb}/{bad_out}","mode":"sbs"}}"#
    ))
    .await;
    assert_eq!(status, 500, "{json}");
    let reason = json["error"].as_str().unwrap_or_default();
    assert!(reason.len() > 10, "{json}");
    assert!(
        platform
            .storage
            .head(outb, &bad_out)
            .await
            .unwrap()
            .is_none()
    );

    // A real segment: 200 {"status":"ok"} and the output exists, converted (double width).
    let source = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/video/realshort.mp4"
    );
    platform
        .storage
        .put_file(inb, &seg, std::path::Path::new(source))
        .await
        .unwrap();
    let (status, json) = post(format!(
        r#"{{"input_uri":"s3://{inb}/{seg}","output_uri":"s3://{outb}/{out}","mode":"sbs"}}"#
    ))
    .await;
    assert_eq!(
        (status, json["status"].as_str()),
        (200, Some("ok")),
        "{json}"
    );
    let file = work.path().join("out.mp4");
    platform
        .storage
        .get_to_file(outb, &out, &file)
        .await
        .unwrap();
    let probe = stereospot_media::Media::default()
        .probe(&file)
        .await
        .unwrap();
    let v = probe.video.as_ref().unwrap();
    assert_eq!((v.width, v.height), (640, 240));
    server.stop().await.unwrap();
}

#[test]
fn the_subcommand_parses() {
    use clap::Parser;
    use stereospot::cli::{Cli, Command};
    let cli = Cli::try_parse_from([
        "stereospot",
        "inference-server",
        "--bind",
        "127.0.0.1:9000",
        "--backend",
        "stub",
    ])
    .unwrap();
    match cli.command {
        Command::InferenceServer(a) => {
            assert_eq!(a.bind.port(), 9000);
            assert_eq!(a.backend, ServerBackendArg::Stub);
        }
        other => panic!("{other:?}"),
    }
}
