// Link the `berth` binary as a position-dependent executable: a CLI run then skips tens of
// thousands of start-up relocations and the page faults they cause (about a millisecond per
// run). Libraries and tests are unaffected.
fn main() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
