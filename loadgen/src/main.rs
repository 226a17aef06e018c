//! The `ringway-loadgen` binary.
fn main() {
    println!("ringway-loadgen: not implemented yet");
}
