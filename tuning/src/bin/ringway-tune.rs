//! `ringway-tune`: a report on how this host is set up for ringway.
fn main() {
    println!("ringway-tune: not implemented yet");
}
