//! Every `bindgen!` of the host, in one place (as spin-world does): the `auth` world of
//! `wit/` (package `lilt:plugin@0.1.0`). Generated code only.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "auth",
});
