//! Steward wire messages: decoding never panics, and what decodes re-encodes to bytes that
//! decode to the same message.
#![no_main]
use libfuzzer_sys::fuzz_target;
use steward::msg::Message;

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = Message::decode(data) {
        let again = Message::decode(&msg.encode()).expect("re-encoding decodes");
        assert_eq!(again, msg);
    }
});
