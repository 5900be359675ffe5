//! The web UI in a real browser: headless Chromium (Debian's `chromium` and `chromium-driver`,
//! installed by `scripts/deps.sh test`) driven through chromedriver with fantoccini, against
//! `stereospot serve` with the embedded workers and the fast depth model, so the job really
//! converts. Screenshots go to `<target>/test-artifacts/web/`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use stereospot_core::{JobId, JobStatus};
use tokio::io::{AsyncBufReadExt, BufReader};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const VIDEO: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/data/video/realshort.mp4"
);

fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target dir")
        .join("test-artifacts/web");
    std::fs::create_dir_all(&dir).expect("artifact dir");
    dir
}

/// chromedriver on a free port, killed on drop; ready once it says so on stdout.
async fn chromedriver() -> (tokio::process::Child, u16) {
    assert!(
        Path::new(CHROMEDRIVER).exists() && Path::new(CHROMIUM).exists(),
        "Chromium and chromedriver are needed: run scripts/deps.sh test"
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let mut child = tokio::process::Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .arg("--allowed-ips=127.0.0.1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("chromedriver starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(line) = lines.next_line().await.expect("chromedriver output") {
            if line.contains("started successfully") {
                return;
            }
        }
        panic!("chromedriver exited before it was ready");
    })
    .await
    .expect("chromedriver ready within 20 s");
    // Keep draining its output so it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, port)
}

async fn browser(port: u16, downloads: &Path) -> Client {
    let caps = serde_json::json!({
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,1000", "--autoplay-policy=no-user-gesture-required",
                "--no-first-run", "--disable-extensions",
            ],
            "prefs": {
                "download.default_directory": downloads.to_str().expect("utf-8 path"),
                "download.prompt_for_download": false,
            },
        }
    });
    let serde_json::Value::Object(caps) = caps else {
        unreachable!()
    };
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a WebDriver session")
}

async fn screenshot(client: &Client, name: &str) {
    let png = client.screenshot().await.expect("screenshot");
    std::fs::write(artifacts().join(name), png).expect("write screenshot");
}

async fn text(client: &Client, css: &str) -> String {
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .text()
        .await
        .expect("text")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn convert_watch_download_and_delete_in_chromium() {
    let started = Instant::now();
    let app = crate::helpers::spawn_app().await;
    let base = app.base_url.clone();
    let (_driver, port) = chromedriver().await;
    let downloads = tempfile::tempdir().expect("download dir");
    let client = browser(port, downloads.path()).await;
    let wait = |d: u64| client.wait().at_most(Duration::from_secs(d));

    // Create a job from the dashboard's form (anaglyph is preselected).
    client.goto(&base).await.unwrap();
    client
        .find(Locator::Css("form.create button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let form = wait(10)
        .for_element(Locator::Id("upload-form"))
        .await
        .unwrap();
    let url = client.current_url().await.unwrap();
    let id = JobId::parse(url.path().strip_prefix("/jobs/").unwrap()).unwrap();

    // Upload through the page: XHR PUT to the presigned URL with a progress bar.
    form.find(Locator::Id("file"))
        .await
        .unwrap()
        .send_keys(&std::fs::canonicalize(VIDEO).unwrap().to_string_lossy())
        .await
        .unwrap();
    client
        .find(Locator::Id("upload-button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait(30)
        .for_element(Locator::Css("#upload-progress[value='100']"))
        .await
        .expect("the upload bar reaches 100%");
    // (The upload form may already be hidden again: read the text content, not the rendered text.)
    let percent = client
        .find(Locator::Id("upload-percent"))
        .await
        .unwrap()
        .prop("textContent")
        .await
        .unwrap();
    assert_eq!(percent.as_deref(), Some("100%"));
    // The PATCH after the upload switches the page to live progress.
    wait(10)
        .for_element(Locator::Css("#source[hidden]"))
        .await
        .unwrap();
    wait(10)
        .for_element(Locator::Css("#progress-section:not([hidden])"))
        .await
        .unwrap();
    assert_eq!(text(&client, "#job-title").await, "realshort");

    // The workers start only now, one at a time, so the in-progress page is deterministic:
    // the media worker alone cuts the source and the job waits at "Converting segments (0/1)".
    let platform = app.server.local.platform.clone();
    let work = tempfile::tempdir().unwrap();
    let config = stereospot_workers::WorkerConfig {
        backend: stereospot_workers::BackendKind::Local,
        receive_wait: Duration::from_millis(200),
        work_root: work.path().to_path_buf(),
        ..stereospot_workers::WorkerConfig::default()
    };
    let shutdown = stereospot_workers::CancellationToken::new();
    let model = crate::workers::fast_model();
    let media = stereospot::workers::media_worker(platform.clone(), config.clone(), &model);
    let media = tokio::spawn(media.run(shutdown.clone()));
    wait(60)
        .for_element(Locator::Css("#job[data-status='chunking_complete']"))
        .await
        .expect("live progress shows the chunked job");
    assert_eq!(text(&client, "#job-percent").await, "10%");
    screenshot(&client, "job-in-progress.png").await;
    let video_worker = stereospot::workers::video_worker(platform.clone(), config, &model).unwrap();
    let video_worker = tokio::spawn(video_worker.run(shutdown.clone()));

    // SSE drives the page; on completion it reloads into the player.
    let video = wait(120)
        .for_element(Locator::Css("video#player"))
        .await
        .expect("the completed job's player");
    let job = platform.jobs.get(id).await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Completed, "{job:?}");
    assert!(
        text(&client, "#conversion")
            .await
            .starts_with("Conversion: ")
    );
    screenshot(&client, "job-completed.png").await;

    // The <video> plays: currentTime advances (resolved by the browser's timeupdate event).
    let played = client
        .execute_async(
            r#"const done = arguments[arguments.length - 1];
               const v = document.querySelector('#player');
               v.muted = true;
               v.addEventListener('timeupdate', () => { if (v.currentTime > 0.2) done({t: v.currentTime, w: v.videoWidth}); });
               v.addEventListener('error', () => done({error: v.error && v.error.code}));
               v.play().catch((e) => done({error: String(e)}));"#,
            vec![],
        )
        .await
        .expect("the video plays");
    assert!(played.get("error").is_none(), "{played}");
    assert!(played["t"].as_f64().unwrap() > 0.2, "{played}");
    assert_eq!(played["w"], 320, "anaglyph keeps the source width");
    drop(video);

    // Download: the suggested name is the title plus 3d.mp4.
    client
        .find(Locator::Id("download"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let file = downloads.path().join("realshort3d.mp4");
    let expected = platform
        .storage
        .head(
            &platform.buckets.output,
            &stereospot_core::ObjectKey::final_output(id).to_string(),
        )
        .await
        .unwrap()
        .unwrap()
        .size;
    // Chrome renames its .crdownload file when done; the file system is polled (no event).
    let t = Instant::now();
    while std::fs::metadata(&file).map(|m| m.len()).ok() != Some(expected) {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "download not finished: {:?}",
            std::fs::read_dir(downloads.path())
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The dashboard lists it; on a phone-sized window the job page still fits.
    client.goto(&base).await.unwrap();
    assert!(text(&client, "main").await.contains("realshort"));
    screenshot(&client, "dashboard.png").await;
    client.set_window_size(390, 844).await.unwrap();
    client.goto(&format!("{base}/jobs/{id}")).await.unwrap();
    let overflow = client
        .execute(
            "return document.documentElement.scrollWidth > window.innerWidth",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        overflow,
        serde_json::Value::Bool(false),
        "no sideways scrolling on a phone"
    );
    screenshot(&client, "job-completed-phone.png").await;
    client.set_window_size(1280, 1000).await.unwrap();

    // Remove it (with the confirmation dialog).
    client
        .find(Locator::Id("delete-button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    client.accept_alert().await.unwrap();
    wait(10)
        .for_element(Locator::Css("p.notice"))
        .await
        .unwrap();
    assert_eq!(
        text(&client, "p.notice").await,
        "Job removed. Cleanup in progress."
    );
    let job = platform.jobs.get(id).await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Deleted);

    client.close().await.unwrap();
    shutdown.cancel();
    media.await.unwrap();
    video_worker.await.unwrap();
    app.server.stop().await.expect("clean stop");
    eprintln!(
        "browser test took {:.1} s; screenshots in {}",
        started.elapsed().as_secs_f64(),
        artifacts().display()
    );
}
