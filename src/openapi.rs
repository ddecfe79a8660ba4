//! What an OpenAPI document says about its paths, for answers the routing alone cannot
//! give: the methods a path takes (a 405's `Allow`).

/// The paths of a document and the methods of each.
pub struct Paths {
    paths: Vec<(Vec<String>, Vec<String>)>,
}

impl Paths {
    /// The paths of `document` (OpenAPI JSON), plus `extra` (path, methods) it leaves out.
    pub fn of(document: &str, extra: &[(&str, &[&str])]) -> Paths {
        let document: serde_json::Value = serde_json::from_str(document).unwrap_or_default();
        let split = |path: &str| path.split('/').map(str::to_string).collect::<Vec<_>>();
        let mut paths: Vec<(Vec<String>, Vec<String>)> = document["paths"]
            .as_object()
            .map(|paths| {
                paths
                    .iter()
                    .map(|(template, item)| {
                        let methods = item
                            .as_object()
                            .map(|item| item.keys().map(|m| m.to_uppercase()).collect())
                            .unwrap_or_default();
                        (split(template), methods)
                    })
                    .collect()
            })
            .unwrap_or_default();
        for (path, methods) in extra {
            paths.push((split(path), methods.iter().map(|m| m.to_string()).collect()));
        }
        Paths { paths }
    }

    /// The methods `path` takes, as an `Allow` value; None for a path not in the document.
    /// A `{name}` segment of the document matches any non-empty segment.
    pub fn allow(&self, path: &str) -> Option<String> {
        let segments: Vec<&str> = path.split('/').collect();
        self.paths
            .iter()
            .find(|(pattern, _)| {
                pattern.len() == segments.len()
                    && pattern.iter().zip(&segments).all(|(want, got)| {
                        want == got || (want.starts_with('{') && !got.is_empty())
                    })
            })
            .map(|(_, methods)| methods.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templated_paths_match_any_segment() {
        let paths = Paths::of(
            r#"{"paths": {"/a/{id}": {"get": {}, "post": {}}, "/a": {"get": {}}}}"#,
            &[("/ws", &["GET"])],
        );
        assert_eq!(paths.allow("/a/x1").as_deref(), Some("GET, POST"));
        assert_eq!(paths.allow("/a").as_deref(), Some("GET"));
        assert_eq!(paths.allow("/ws").as_deref(), Some("GET"));
        assert_eq!(paths.allow("/a/"), None);
        assert_eq!(paths.allow("/a/x/y"), None);
        assert_eq!(paths.allow("/b"), None);
    }
}
