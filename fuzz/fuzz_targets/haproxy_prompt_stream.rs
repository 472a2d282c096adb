//! Prompt-mode framing: the raw byte stream of one exchange, cut into chunks at the positions the
//! first bytes give, split into replies under a small size bound.
#![no_main]
use haproxy_drain::haproxy::transport::PromptSplitter;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [expected, chunk, rest @ ..] = data else {
        return;
    };
    let mut splitter = PromptSplitter::new(4096);
    let chunk = usize::from(*chunk).max(1);
    for piece in rest.chunks(chunk) {
        if splitter.feed(piece).is_err() {
            return;
        }
    }
    splitter.finish();
    let _ = splitter.into_replies(usize::from(*expected % 16));
});
