//! The `ringway-balancer` binary.
fn main() {
    println!("ringway-balancer: not implemented yet");
}
