use stereospot::cli::ServeArgs;
use stereospot::serve::Server;
use stereospot_core::config::Settings;

/// A server on port 0 with a fresh temporary data directory.
pub struct TestApp {
    pub server: Server,
    pub base_url: String,
    pub data_dir: tempfile::TempDir,
}

pub async fn spawn_app() -> TestApp {
    if std::env::var_os("TEST_LOG").is_some() {
        stereospot::telemetry::init();
    }
    let data_dir = tempfile::tempdir().expect("temp dir");
    let settings = Settings::from_lookup(|_| None).expect("default settings");
    let args = ServeArgs {
        data_dir: Some(data_dir.path().to_path_buf()),
        bind: "127.0.0.1:0".parse().expect("addr"),
        no_workers: true,
        model: stereospot::model_args::ModelArgs::default(),
        web: stereospot::cli::WebArgs::default(),
    };
    let listener = tokio::net::TcpListener::bind(args.bind)
        .await
        .expect("bind");
    let server = stereospot::serve::start(&settings, &args, listener)
        .await
        .expect("server starts");
    let base_url = format!("http://{}", server.addr);
    TestApp {
        server,
        base_url,
        data_dir,
    }
}
