//! What the browser tests share: Debian's headless Chromium driven over the DevTools
//! protocol (chromiumoxide), and screenshots written to `target/screenshots/`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chromiumoxide::browser::{Browser, BrowserConfig};
use chromiumoxide::page::ScreenshotParams;
use chromiumoxide::Page;
use futures::StreamExt;

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
