//! Loads sqlite-vec into every SQLite connection this process opens.

use std::sync::Once;

/// Registers sqlite-vec as an auto-extension, once per process, before any pool opens, so
/// its distance functions (`vec_distance_cosine`, ...) exist on every connection.
pub fn register() {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        #[expect(
            unsafe_code,
            reason = "SQLite's C API is the only way to register an extension"
        )]
        // SAFETY: sqlite3_vec_init is sqlite-vec's entry point with exactly the signature SQLite
        // expects of an extension (the crate declares it without arguments); SQLite calls it
        // once per new connection. The libsqlite3-sys version is the one sqlx links.
        unsafe {
            let entry_point: unsafe extern "C" fn(
                *mut libsqlite3_sys::sqlite3,
                *mut *mut std::ffi::c_char,
                *const libsqlite3_sys::sqlite3_api_routines,
            ) -> std::ffi::c_int = std::mem::transmute(sqlite_vec::sqlite3_vec_init as *const ());
            libsqlite3_sys::sqlite3_auto_extension(Some(entry_point));
        }
    });
}
