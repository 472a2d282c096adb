//! Prompt-mode framing on byte streams as HAProxy 2.6 sends them, cut at every possible place.

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
