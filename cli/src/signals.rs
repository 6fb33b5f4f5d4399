//! Catching a signal while a guard lives, for the commands that stop cleanly on Ctrl-C or
//! SIGTERM (`derain` on videos, `relay`): the one place the command calls `sigaction`.

/// A signal handler installed by [`Caught::install`]; dropping it restores the previous one.
pub struct Caught {
    signal: libc::c_int,
    previous: libc::sigaction,
}

impl Caught {
    /// Installs `handler` for `signal`. The handler runs in signal context: it may only touch
    /// atomics (or `_exit`).
    pub fn install(
        signal: libc::c_int,
        handler: extern "C" fn(libc::c_int),
    ) -> std::io::Result<Caught> {
        // SAFETY: the structs are zero-initialised plain C data owned here; the handler's
        // signature is the one sigaction expects without SA_SIGINFO.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = handler as libc::sighandler_t;
            libc::sigemptyset(&mut action.sa_mask);
            action.sa_flags = libc::SA_RESTART;
            let mut previous: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(signal, &action, &mut previous) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(Caught { signal, previous })
        }
    }
}

impl Drop for Caught {
    fn drop(&mut self) {
        // SAFETY: restores the action saved by install.
        unsafe {
            libc::sigaction(self.signal, &self.previous, std::ptr::null_mut());
        }
    }
}
