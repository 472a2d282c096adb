//! One connection, many commands: prompt mode framing.
//!
//! Replies cannot be delimited by blank lines (some errors end with a single `\n`, and `;`-joined
//! replies simply concatenate), so every exchange switches the CLI into prompt mode first and cuts
//! replies at the prompt: `"> "` on a worker socket, `"master> "` on the master CLI. A prompt is
//! only recognised at the start of a line, since every reply ends with a newline. The exchange
//! ends with `quit` and is read to EOF, so the number of replies is checked: a data line that
//! happens to start with the prompt shows up as a surplus reply and fails the call
//! ([`SplitError::Ambiguous`]) instead of shifting every later reply by one.
//!
//! All command lines are written in one go while replies are read concurrently, so a large reply
//! cannot dead-lock against a still-pending write.

use std::path::Path;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};

use super::addr::{Endpoint, HaproxyAddr};
use super::error::{connect_hint, HaproxyError};
use super::reply::RawReply;

const WORKER_PROMPT: &[u8] = b"> ";
const MASTER_PROMPT: &[u8] = b"master> ";
/// Empty replies past the commands' tolerated at the end of an exchange (the master's prompt
/// after `quit`, with one to spare).
const MAX_SURPLUS_REPLIES: usize = 2;

/// Why the splitter stopped accepting input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SplitError {
    /// A single reply grew beyond the limit without a prompt.
    TooLarge,
    /// More non-empty replies than commands: some data line looked like a prompt.
    Ambiguous,
    /// The answer to `prompt` was not a prompt: not a HAProxy CLI.
    NoPrompt(String),
}

/// Cuts a prompt-mode byte stream into replies. Pure; fed chunk by chunk.
#[derive(Debug)]
pub struct PromptSplitter {
    buf: Vec<u8>,
    prompt: Option<&'static [u8]>,
    /// Bytes of `buf` already searched for a prompt (minus a prompt's length of overlap).
    scanned: usize,
    max_reply: usize,
    replies: Vec<RawReply>,
}

impl PromptSplitter {
    pub fn new(max_reply: usize) -> Self {
        Self {
            buf: Vec::new(),
            prompt: None,
            scanned: 0,
            max_reply,
            replies: Vec::new(),
        }
    }

    /// Replies cut so far (the answer to `prompt` itself is not included).
    pub fn replies(&self) -> &[RawReply] {
        &self.replies
    }

    pub fn feed(&mut self, chunk: &[u8]) -> Result<(), SplitError> {
        self.buf.extend_from_slice(chunk);
        if self.prompt.is_none() && !self.detect_prompt()? {
            return Ok(());
        }
        let prompt = self.prompt.unwrap_or(WORKER_PROMPT);
        // Replies are cut at a moving cursor and the buffer compacted once per chunk, so a
        // chunk holding hundreds of small replies costs one copy, not one per reply.
        let mut reply_start = 0;
        loop {
            let pending = &self.buf[reply_start..];
            let from = self.scanned.saturating_sub(prompt.len() + 1);
            let end = if pending.starts_with(prompt) {
                Some(0)
            } else {
                find_line_start(&pending[from..], prompt).map(|i| from + i)
            };
            let Some(end) = end else {
                self.scanned = pending.len();
                break;
            };
            let text = String::from_utf8_lossy(&pending[..end]).into_owned();
            self.replies.push(RawReply {
                text,
                terminated: true,
            });
            reply_start += end + prompt.len();
            self.scanned = 0;
        }
        self.buf.drain(..reply_start);
        if self.buf.len() > self.max_reply {
            return Err(SplitError::TooLarge);
        }
        Ok(())
    }

    /// The connection ended: whatever is left (possibly nothing) is the last, unterminated reply.
    pub fn finish(&mut self) {
        if self.prompt.is_some() {
            let text = String::from_utf8_lossy(&self.buf).into_owned();
            self.replies.push(RawReply {
                text,
                terminated: false,
            });
            self.buf.clear();
        }
    }

    /// The replies to the `expected` commands. Surplus replies must be empty (the master CLI
    /// prints one more prompt after `quit`); a non-empty surplus means the cut was wrong.
    pub fn into_replies(mut self, expected: usize) -> Result<Vec<RawReply>, SplitError> {
        if self
            .replies
            .iter()
            .skip(expected)
            .any(|r| !r.text.is_empty())
        {
            return Err(SplitError::Ambiguous);
        }
        self.replies.truncate(expected);
        Ok(self.replies)
    }

    fn detect_prompt(&mut self) -> Result<bool, SplitError> {
        for (answer, prompt) in [
            (&b"\n> "[..], WORKER_PROMPT),
            (MASTER_PROMPT, MASTER_PROMPT),
        ] {
            if self.buf.starts_with(answer) {
                self.prompt = Some(prompt);
                self.buf.drain(..answer.len());
                return Ok(true);
            }
        }
        let could_still_be_prompt = [&b"\n> "[..], MASTER_PROMPT]
            .iter()
            .any(|answer| answer.starts_with(&self.buf));
        match could_still_be_prompt {
            true => Ok(false),
            false => {
                let seen =
                    String::from_utf8_lossy(&self.buf[..self.buf.len().min(80)]).into_owned();
                Err(SplitError::NoPrompt(seen))
            }
        }
    }
}

/// Position of the first `prompt` that starts a line (right after a `\n`), pointing after the `\n`.
fn find_line_start(haystack: &[u8], prompt: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = haystack[from..].iter().position(|&b| b == b'\n') {
        let line_start = from + i + 1;
        if haystack[line_start..].starts_with(prompt) {
            return Some(line_start);
        }
        from = line_start;
    }
    None
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

async fn connect(addr: &HaproxyAddr) -> Result<Box<dyn Stream>, HaproxyError> {
    let result = match &addr.endpoint {
        Endpoint::Unix(path) => connect_unix(path).await,
        Endpoint::Tcp { host, port } => TcpStream::connect(HaproxyAddr::tcp_target(host, *port))
            .await
            .map(|s| Box::new(s) as Box<dyn Stream>),
    };
    result.map_err(|source| HaproxyError::Connect {
        addr: addr.to_string(),
        hint: connect_hint(source.kind(), matches!(addr.endpoint, Endpoint::Unix(_))),
        source,
    })
}

async fn connect_unix(path: &Path) -> std::io::Result<Box<dyn Stream>> {
    Ok(Box::new(UnixStream::connect(path).await?))
}

/// Sends `prompt`, every line, then `quit`, and returns one reply per line that got one (fewer
/// when HAProxy closed the connection early). No timeout here: the caller wraps the whole call.
pub async fn exchange(
    addr: &HaproxyAddr,
    lines: &[String],
    max_reply: usize,
) -> Result<Vec<RawReply>, HaproxyError> {
    let stream = connect(addr).await?;
    let (mut reader, mut writer) = tokio::io::split(stream);
    let mut request = String::with_capacity(16 + lines.iter().map(|l| l.len() + 1).sum::<usize>());
    request.push_str("prompt\n");
    for line in lines {
        request.push_str(line);
        request.push('\n');
    }
    request.push_str("quit\n");

    // Written from its own task so that a peer that stops reading cannot stall the reader. Write
    // errors are ignored: HAProxy may close early (e.g. the master CLI after an unknown worker),
    // and the reader reports what is missing.
    let writer_task = tokio::spawn(async move {
        let _ = writer.write_all(request.as_bytes()).await;
        let _ = writer.flush().await;
    });
    let read = async {
        let mut splitter = PromptSplitter::new(max_reply);
        let mut chunk = vec![0u8; 64 * 1024];
        // Read to EOF (HAProxy closes after `quit`) rather than stopping at the N-th prompt: a
        // surplus reply then reveals a data line that looked like a prompt.
        loop {
            let n = reader
                .read(&mut chunk)
                .await
                .map_err(|source| HaproxyError::Io {
                    addr: addr.to_string(),
                    source,
                })?;
            if n == 0 {
                splitter.finish();
                break;
            }
            splitter
                .feed(&chunk[..n])
                .map_err(|e| split_error(addr, max_reply, e))?;
            // Each reply is bounded by `max_reply`, but not their number: a peer printing
            // prompts without end would grow the list until the timeout. More than one surplus
            // (the master CLI's prompt after `quit`) can only end as `Ambiguous`: stop now.
            if splitter.replies().len() > lines.len() + MAX_SURPLUS_REPLIES {
                return Err(split_error(addr, max_reply, SplitError::Ambiguous));
            }
        }
        if splitter.prompt.is_none() {
            return Err(HaproxyError::Protocol {
                addr: addr.to_string(),
                detail: "the connection closed before a CLI prompt arrived".to_string(),
            });
        }
        splitter
            .into_replies(lines.len())
            .map_err(|e| split_error(addr, max_reply, e))
    };
    let replies = read.await;
    writer_task.abort();
    replies
}

fn split_error(addr: &HaproxyAddr, max_reply: usize, error: SplitError) -> HaproxyError {
    let addr = addr.to_string();
    match error {
        SplitError::TooLarge => HaproxyError::ReplyTooLarge {
            addr,
            limit: max_reply,
        },
        SplitError::NoPrompt(seen) => HaproxyError::Protocol {
            addr,
            detail: format!("expected a CLI prompt after `prompt`, got {seen:?}"),
        },
        SplitError::Ambiguous => HaproxyError::Protocol {
            addr,
            detail: "more replies than commands: a reply contained a line that looks like the \
                     prompt, so replies cannot be told apart"
                .to_string(),
        },
    }
}

/// Prompt-mode framing on byte streams as HAProxy 2.6 sends them, cut at every possible place.
#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn split_all(stream: &[u8], chunk: usize) -> Result<Vec<RawReply>, SplitError> {
        let mut splitter = PromptSplitter::new(1024);
        for piece in stream.chunks(chunk.max(1)) {
            splitter.feed(piece)?;
        }
        splitter.finish();
        Ok(splitter.replies)
    }

    fn texts(replies: &[RawReply]) -> Vec<(&str, bool)> {
        replies
            .iter()
            .map(|r| (r.text.as_str(), r.terminated))
            .collect()
    }

    /// `prompt`, `get weight`, `set weight … abc` (no blank line), `set weight` (empty), `quit`.
    const WORKER: &[u8] =
        b"\n> 100 (initial 100)\n\n> Empty weight string empty or preceded by garbage\n> \n> ";

    #[test]
    fn worker_replies_are_cut_at_the_prompt_in_any_chunking() {
        for chunk in 1..WORKER.len() + 1 {
            let replies = split_all(WORKER, chunk).unwrap();
            assert_eq!(
                texts(&replies)[..3],
                [
                    ("100 (initial 100)\n\n", true),
                    ("Empty weight string empty or preceded by garbage\n", true),
                    ("\n", true),
                ],
                "chunk size {chunk}"
            );
        }
    }

    #[test]
    fn master_prompts_and_an_early_close() {
        // `prompt`, `@1 get weight`, `@!99 show info` (unknown worker: the master closes).
        let stream = b"master> 20 (initial 100)\n\nmaster> Can't find the target PID matching the prefix '@!99'\n";
        for chunk in [1, 3, 7, stream.len()] {
            let replies = split_all(stream, chunk).unwrap();
            assert_eq!(
                texts(&replies),
                [
                    ("20 (initial 100)\n\n", true),
                    (
                        "Can't find the target PID matching the prefix '@!99'\n",
                        false
                    ),
                ]
            );
        }
    }

    #[test]
    fn a_prompt_inside_a_line_is_data() {
        let stream = b"\n> a> b\n\n> ";
        let replies = split_all(stream, 4).unwrap();
        assert_eq!(texts(&replies)[0], ("a> b\n\n", true));
    }

    #[test]
    fn endless_replies_hit_the_limit_and_non_haproxy_peers_are_rejected() {
        let endless = [&b"\n> "[..], &[b'x'; 4096]].concat();
        assert_eq!(split_all(&endless, 100), Err(SplitError::TooLarge));
        assert!(matches!(
            split_all(b"HTTP/1.1 400 Bad Request\r\n", 5),
            Err(SplitError::NoPrompt(_))
        ));
    }

    #[test]
    fn a_data_line_that_looks_like_a_prompt_is_detected_not_misread() {
        // Two commands; the first reply contains a line starting with "> ".
        let stream = b"\n> line one\n> quoted\n\n> second\n\n> ";
        let mut splitter = PromptSplitter::new(1024);
        splitter.feed(stream).unwrap();
        splitter.finish();
        assert_eq!(splitter.into_replies(2), Err(SplitError::Ambiguous));
    }

    #[test]
    fn surplus_empty_replies_are_dropped() {
        // The master CLI prints one more prompt after `quit`, then closes.
        let mut splitter = PromptSplitter::new(1024);
        splitter
            .feed(b"master> 1 (initial 1)\n\nmaster> master> ")
            .unwrap();
        splitter.finish();
        let replies = splitter.into_replies(1).unwrap();
        assert_eq!(texts(&replies), [("1 (initial 1)\n\n", true)]);
    }

    proptest! {
        #[test]
        fn arbitrary_streams_never_panic(stream in prop::collection::vec(any::<u8>(), 0..600), chunk in 1usize..64) {
            let _ = split_all(&stream, chunk);
            let prefixed = [&b"\n> "[..], &stream].concat();
            let _ = split_all(&prefixed, chunk);
        }

        #[test]
        fn chunking_never_changes_the_cut(lines in prop::collection::vec("[a-z ]{0,12}", 1..8), chunk in 1usize..16) {
            let mut stream = b"\n> ".to_vec();
            for line in &lines {
                stream.extend_from_slice(format!("{line}\n> ").as_bytes());
            }
            let whole = split_all(&stream, stream.len()).unwrap();
            let pieces = split_all(&stream, chunk).unwrap();
            prop_assert_eq!(&whole, &pieces);
            prop_assert_eq!(whole.len(), lines.len() + 1);
        }
    }
}
