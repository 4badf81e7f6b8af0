// mimalloc: a served action allocates and frees hundreds of small objects across the host's
// HTTP, the engine call and the sandbox; glibc's malloc spent ~10 % of berth serve's CPU on them.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    std::process::exit(berth::cli::main_entry())
}
