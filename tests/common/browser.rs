//! What the browser tests share: a `lilypad dev` process (the network the web roles run
//! on), Debian's headless Chromium driven over the DevTools protocol (chromiumoxide), and
//! screenshots written to `target/screenshots/`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use chromiumoxide::browser::{Browser, BrowserConfig};
use chromiumoxide::page::ScreenshotParams;
use chromiumoxide::Page;
use futures::StreamExt;
use tokio::io::{AsyncBufReadExt, BufReader};

/// A `lilypad dev` process and what it printed about itself.
pub struct DevProcess {
    pub child: tokio::process::Child,
    pub network: lilypad::dev::NetworkFile,
    /// The URLs it printed by name (`faucet` …).
    pub urls: std::collections::HashMap<String, String>,
    pub log: PathBuf,
}

impl DevProcess {
    /// Starts `lilypad dev` in `dir` with `env` (ports and such) and waits until it is up.
    pub async fn start(dir: &Path, env: &[(&str, String)]) -> DevProcess {
        let log = dir.join("dev.log");
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_lilypad"))
            .arg("dev")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", dir)
            .env("DATA_DIR", dir)
            .env("LOG_LEVEL", "info")
            .env("SERVER_PORT", super::bacalhau::free_port().to_string())
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::piped())
            .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
            .kill_on_drop(true)
            .spawn()
            .expect("the lilypad binary starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut urls = std::collections::HashMap::new();
        let started = tokio::time::timeout(Duration::from_secs(120), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                // "  faucet: http://127.0.0.1:PORT (FAUCET_LISTEN)"
                if let Some((name, rest)) = line.trim().split_once(": http") {
                    let url = format!("http{}", rest.split_whitespace().next().unwrap());
                    urls.insert(name.to_string(), url);
                }
                if line.starts_with("In another terminal") {
                    return;
                }
            }
            panic!(
                "lilypad dev exited: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        })
        .await;
        assert!(started.is_ok(), "lilypad dev did not start within 120 s");
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let network = lilypad::dev::find_running(&dir.join("dev"))
            .await
            .expect("the dev network answers");
        DevProcess {
            child,
            network,
            urls,
            log,
        }
    }

    pub fn url(&self, name: &str) -> &str {
        self.urls
            .get(name)
            .unwrap_or_else(|| panic!("lilypad dev printed no {name} URL: {:?}", self.urls))
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// Headless Chromium (Debian's `chromium`, or LILYPAD_CHROMIUM) with a profile of its own.
pub struct Chromium {
    pub browser: Browser,
    handler: tokio::task::JoinHandle<()>,
    _profile: tempfile::TempDir,
}

impl Chromium {
    pub async fn launch() -> Chromium {
        let executable = std::env::var("LILYPAD_CHROMIUM")
            .map(PathBuf::from)
            .unwrap_or_else(|_| {
                std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
                    .map(|dir| dir.join("chromium"))
                    .find(|path| path.is_file())
                    .expect("chromium on the PATH (apt-get install chromium) or LILYPAD_CHROMIUM")
            });
        let profile = tempfile::tempdir().unwrap();
        let config = BrowserConfig::builder()
            .chrome_executable(&executable)
            .no_sandbox()
            .user_data_dir(profile.path())
            .window_size(1200, 900)
            .args([
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ])
            .build()
            .unwrap();
        let (browser, mut handler) = Browser::launch(config)
            .await
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", executable.display()));
        let handler = tokio::spawn(async move { while handler.next().await.is_some() {} });
        Chromium {
            browser,
            handler,
            _profile: profile,
        }
    }

    pub async fn open(&self, url: &str) -> Page {
        let page = self.browser.new_page(url).await.unwrap();
        page.wait_for_navigation().await.unwrap();
        page
    }

    pub async fn close(mut self) {
        let _ = self.browser.close().await;
        let _ = self.browser.wait().await;
        self.handler.abort();
    }
}

/// Waits (at most 30 s) until the element at `selector` exists and its text satisfies
/// `done`; returns the text.
pub async fn wait_for_text(page: &Page, selector: &str, done: impl Fn(&str) -> bool) -> String {
    let started = Instant::now();
    loop {
        let text = match page.find_element(selector).await {
            Ok(element) => element.inner_text().await.ok().flatten(),
            Err(_) => None,
        };
        if let Some(text) = &text {
            if done(text) {
                return text.clone();
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{selector} never showed what was awaited; last: {text:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Types `text` into the input at `selector`, replacing what it held.
pub async fn fill(page: &Page, selector: &str, text: &str) {
    let input = page.find_element(selector).await.unwrap();
    input
        .call_js_fn("function() { this.value = ''; }", false)
        .await
        .unwrap();
    input.click().await.unwrap().type_str(text).await.unwrap();
}

pub async fn click(page: &Page, selector: &str) {
    page.find_element(selector)
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// Saves a full-page screenshot as `target/screenshots/NAME.png`; returns its path.
pub async fn screenshot(page: &Page, name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.png"));
    page.save_screenshot(ScreenshotParams::builder().full_page(true).build(), &path)
        .await
        .unwrap();
    assert!(
        std::fs::metadata(&path).unwrap().len() > 1000,
        "{name}.png is empty"
    );
    path
}
