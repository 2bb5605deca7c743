// Compiles the C shim for long double arithmetic (see src/ffi/longdouble.c).
fn main() {
    println!("cargo:rerun-if-changed=src/ffi/longdouble.c");
    cc::Build::new().file("src/ffi/longdouble.c").opt_level(2).compile("pgkv_longdouble");
}
