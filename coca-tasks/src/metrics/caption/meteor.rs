//! METEOR 1.5 through the reference Java implementation, as `pycocoevalcap/meteor/meteor.py`
//! runs it: `java -jar -Xmx2G meteor-1.5.jar - - -stdio -l en -norm` in the jar's directory
//! (which must also hold `data/paraphrase-en.gz`), one `SCORE ||| refs ||| hyp` line per
//! image, then one `EVAL ||| stats...` line answered by the per-image scores and the corpus
//! score. There is no Rust re-implementation: without Java and the jar, METEOR is not computed.
//! `.ci/meteor.sh` fetches the pinned jar and data (pycocoevalcap 1.2's) and prints the jar path.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::super::data_err;
use super::TokenizedImage;
use crate::error::{Result, TaskError};

/// Environment variable naming the `meteor-1.5.jar` to use.
pub const METEOR_JAR_ENV: &str = "COCA_METEOR_JAR";

/// The jar named by [`METEOR_JAR_ENV`], if set and non-empty.
pub fn meteor_jar_from_env() -> Option<PathBuf> {
    std::env::var_os(METEOR_JAR_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// Whether an executable `java` is on `PATH`.
pub fn java_on_path() -> bool {
    let Some(path) = std::env::var_os("PATH") else {
        return false;
    };
    std::env::split_paths(&path).any(|dir| {
        ["java", "java.exe"].iter().any(|name| {
            let p = dir.join(name);
            p.is_file() && is_executable(&p)
        })
    })
}

#[cfg(unix)]
fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .is_ok_and(|m| m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(_: &Path) -> bool {
    true
}

/// Corpus and per-image METEOR of PTB-tokenised images, computed by the Java jar.
pub fn meteor_score(jar: &Path, images: &[TokenizedImage]) -> Result<(f64, Vec<f64>)> {
    if !jar.is_file() {
        return Err(data_err(
            jar,
            format!("METEOR jar not found (set by {METEOR_JAR_ENV})"),
        ));
    }
    let jar = jar.canonicalize().map_err(|e| TaskError::io(jar, e))?;
    let dir = jar
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let mut child = Command::new("java")
        .arg("-jar")
        .arg("-Xmx2G")
        .arg(&jar)
        .args(["-", "-", "-stdio", "-l", "en", "-norm"])
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| data_err(&jar, format!("cannot start `java` for METEOR: {e}")))?;
    let stderr_thread = child.stderr.take().map(|mut err| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        })
    });
    let result = (|| -> std::result::Result<(f64, Vec<f64>), String> {
        let mut stdin = child.stdin.take().ok_or("no stdin pipe")?;
        let mut stdout = BufReader::new(child.stdout.take().ok_or("no stdout pipe")?);
        let mut exchange =
            |line: &str, replies: usize| -> std::result::Result<Vec<String>, String> {
                stdin
                    .write_all(line.as_bytes())
                    .and_then(|_| stdin.write_all(b"\n"))
                    .and_then(|_| stdin.flush())
                    .map_err(|e| e.to_string())?;
                let mut out = Vec::with_capacity(replies);
                for _ in 0..replies {
                    let mut s = String::new();
                    if stdout.read_line(&mut s).map_err(|e| e.to_string())? == 0 {
                        return Err("METEOR exited early".into());
                    }
                    out.push(s.trim().to_string());
                }
                Ok(out)
            };
        let mut eval_line = String::from("EVAL");
        for im in images {
            let hyp = im.hyp.replace("|||", "").replace("  ", " ");
            let line = format!("SCORE ||| {} ||| {}", im.refs.join(" ||| "), hyp);
            let stats = exchange(&line, 1)?;
            eval_line.push_str(" ||| ");
            eval_line.push_str(&stats[0]);
        }
        let replies = exchange(&eval_line, images.len() + 1)?;
        let parse = |s: &String| {
            s.parse::<f64>()
                .map_err(|_| format!("unexpected METEOR output {s:?}"))
        };
        let per = replies[..images.len()]
            .iter()
            .map(parse)
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok((parse(&replies[images.len()])?, per))
    })();
    let _ = child.kill();
    let _ = child.wait();
    let stderr = stderr_thread
        .and_then(|t| t.join().ok())
        .unwrap_or_default();
    result.map_err(|msg| {
        let tail: String = stderr
            .lines()
            .rev()
            .take(5)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join(" | ");
        data_err(&jar, format!("METEOR failed: {msg}; stderr: {tail}"))
    })
}
