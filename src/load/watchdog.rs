//! Request timeouts without a timer per read. glommio's per-socket read and
//! write timeouts put a timer into the reactor for every pending read and
//! re-arm an io_uring timeout whenever the earliest one changes: measurable
//! at tens of thousands of requests per second. Instead every client keeps
//! its current deadline in a [`Slot`], and one task per executor scans the
//! slots every [`SCAN_INTERVAL`] and shuts down the socket of any request
//! past its deadline; the pending read then ends and the client reports a
//! timeout. Timeouts are thus enforced within `SCAN_INTERVAL`.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};
use std::time::Duration;

/// How often deadlines are checked.
pub const SCAN_INTERVAL: Duration = Duration::from_millis(50);

/// One client's deadline.
#[derive(Debug, Default)]
pub struct Slot {
    /// Socket of the request in flight (-1: none).
    fd: Cell<i32>,
    /// Deadline, ns since the executor's epoch (0: nothing in flight).
    deadline_ns: Cell<u64>,
    /// The watchdog shut the socket down.
    fired: Cell<bool>,
}

struct Registry {
    epoch: quanta::Instant,
    slots: Vec<Weak<Slot>>,
    scanning: bool,
}

thread_local! {
    static REGISTRY: RefCell<Registry> = RefCell::new(Registry {
        epoch: quanta::Instant::now(),
        slots: Vec::new(),
        scanning: false,
    });
}

fn now_ns() -> u64 {
    REGISTRY.with(|r| {
        quanta::Instant::now()
            .saturating_duration_since(r.borrow().epoch)
            .as_nanos() as u64
    })
}

impl Slot {
    /// A slot watched by this executor's watchdog (started on first use;
    /// must be called on a glommio executor).
    pub fn register() -> Rc<Slot> {
        let slot = Rc::new(Slot {
            fd: Cell::new(-1),
            ..Slot::default()
        });
        let start_scanning = REGISTRY.with(|r| {
            let mut r = r.borrow_mut();
            r.slots.push(Rc::downgrade(&slot));
            !std::mem::replace(&mut r.scanning, true)
        });
        if start_scanning {
            glommio::spawn_local(scan()).detach();
        }
        slot
    }

    /// A request on `fd` must finish within `timeout`.
    pub fn arm(&self, fd: i32, timeout: Duration) {
        self.fired.set(false);
        self.fd.set(fd);
        self.deadline_ns
            .set(now_ns().saturating_add(timeout.as_nanos() as u64).max(1));
    }

    /// The request finished (or failed).
    pub fn disarm(&self) {
        self.deadline_ns.set(0);
        self.fd.set(-1);
    }

    /// Whether the last armed request was cut off by the watchdog.
    pub fn fired(&self) -> bool {
        self.fired.get()
    }
}

/// The executor's scanning task; ends when no slot is left.
async fn scan() {
    loop {
        glommio::timer::sleep(SCAN_INTERVAL).await;
        let now = now_ns();
        let alive = REGISTRY.with(|r| {
            let mut r = r.borrow_mut();
            r.slots.retain(|weak| match weak.upgrade() {
                Some(slot) => {
                    let deadline = slot.deadline_ns.get();
                    if deadline != 0 && now > deadline && slot.fd.get() >= 0 {
                        slot.fired.set(true);
                        // SAFETY: the fd belongs to a live stream of the
                        // slot's client (disarmed before the stream drops);
                        // shutdown only ends its pending I/O.
                        unsafe { libc::shutdown(slot.fd.get(), libc::SHUT_RDWR) };
                        slot.deadline_ns.set(0);
                    }
                    true
                }
                None => false,
            });
            if r.slots.is_empty() {
                r.scanning = false;
            }
            r.scanning
        });
        if !alive {
            return;
        }
    }
}
