//! The `ringway-agent` binary.
fn main() {
    println!("ringway-agent: not implemented yet");
}
