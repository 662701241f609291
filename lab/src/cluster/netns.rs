//! The cluster's own network namespace: an unnamed one, held by a `sleep`
//! child that dies with the launcher, whose only interface is its own `lo`
//! carrying 10.244.0.0/16. Node and pod addresses live there and nowhere else,
//! so no packet for them can leave the machine (EndpointSlice validation
//! rejects loopback addresses, so pods cannot simply use 127.x).
//!
//! Children enter it with `setns` before `exec`; the launcher reaches inside
//! through a thread that has entered it and opens connections for the host's
//! forwards (a socket stays in the namespace it was created in).

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, bail};

/// The range on the namespace's `lo`: every address in it is local there.
pub const NETWORK: Ipv4Addr = Ipv4Addr::new(10, 244, 0, 1);
pub const NETMASK: Ipv4Addr = Ipv4Addr::new(255, 255, 0, 0);

/// The control plane's address inside the namespace (etcd listens on its own 127.0.0.1).
pub const CONTROL_PLANE_IP: Ipv4Addr = NETWORK;

/// Node `n` (1-based): `10.244.n.1`; its pods take `10.244.n.2` and up.
pub fn node_ip(n: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 244, n as u8, 1)
}

pub struct Netns {
    holder: Child,
    fd: OwnedFd,
}

type DialRequest = (SocketAddr, mpsc::Sender<std::io::Result<TcpStream>>);

/// Opens TCP connections from inside the namespace, for the host's forwards.
#[derive(Clone)]
pub struct Dialer {
    tx: mpsc::Sender<DialRequest>,
}

impl Netns {
    /// Create the namespace. Needs root (CAP_SYS_ADMIN), as CI and developer machines have.
    pub fn create() -> anyhow::Result<Self> {
        let mut cmd = std::process::Command::new("sleep");
        cmd.arg("infinity")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        // SAFETY: getpid has no preconditions.
        let parent = unsafe { libc::getpid() };
        // SAFETY: the closure runs in the forked child before exec and only makes
        // async-signal-safe system calls (prctl, getppid, unshare, socket, ioctl, close).
        unsafe {
            cmd.pre_exec(move || {
                die_with(parent)?;
                if libc::unshare(libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                configure_lo()
            });
        }
        let mut holder = match cmd.spawn() {
            Ok(c) => c,
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => bail!(
                "creating the cluster's network namespace was refused ({e}); \
                 `wsaffinity-lab cluster up` needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN): run it as root"
            ),
            Err(e) => return Err(e).context("creating the cluster's network namespace"),
        };
        let path = format!("/proc/{}/ns/net", holder.id());
        let fd = match std::fs::File::open(&path) {
            Ok(f) => OwnedFd::from(f),
            Err(e) => {
                let _ = holder.kill();
                return Err(e).with_context(|| format!("opening {path}"));
            }
        };
        Ok(Self { holder, fd })
    }

    /// Make `cmd` start inside the namespace and die with this process.
    pub fn enter_on_spawn(&self, cmd: &mut std::process::Command) {
        let fd = self.fd.as_raw_fd();
        // SAFETY: getpid has no preconditions.
        let parent = unsafe { libc::getpid() };
        // SAFETY: async-signal-safe calls only (prctl, getppid, setns); `fd`
        // stays open in the child until exec (it is close-on-exec).
        unsafe {
            cmd.pre_exec(move || {
                die_with(parent)?;
                if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }

    /// A thread inside the namespace that opens connections on request.
    pub fn dialer(&self) -> anyhow::Result<Dialer> {
        let fd = self
            .fd
            .try_clone()
            .context("duplicating the namespace fd")?;
        let (tx, rx) = mpsc::channel::<DialRequest>();
        let (ready_tx, ready_rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("netns-dialer".into())
            .spawn(move || {
                // SAFETY: setns on this thread only; fd is a namespace fd we own.
                let entered = unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) };
                let _ = ready_tx.send(if entered == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                });
                if entered != 0 {
                    return;
                }
                while let Ok((addr, reply)) = rx.recv() {
                    // Connecting inside the namespace is local: no need for a thread each.
                    let r = TcpStream::connect_timeout(&addr, Duration::from_secs(5));
                    let _ = reply.send(r);
                }
            })
            .context("starting the namespace dialer thread")?;
        ready_rx
            .recv()
            .context("namespace dialer thread")?
            .context("entering the cluster's network namespace")?;
        Ok(Dialer { tx })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

impl Dialer {
    /// Connect to `addr` inside the namespace.
    pub async fn connect(&self, addr: SocketAddr) -> std::io::Result<tokio::net::TcpStream> {
        let (reply_tx, reply_rx) = mpsc::channel();
        self.tx
            .send((addr, reply_tx))
            .map_err(|_| std::io::Error::other("namespace dialer stopped"))?;
        let std_stream = tokio::task::spawn_blocking(move || reply_rx.recv())
            .await
            .map_err(std::io::Error::other)?
            .map_err(|_| std::io::Error::other("namespace dialer stopped"))??;
        std_stream.set_nonblocking(true)?;
        let _ = std_stream.set_nodelay(true);
        tokio::net::TcpStream::from_std(std_stream)
    }
}

/// PR_SET_PDEATHSIG: a SIGKILLed launcher leaves no orphan.
fn die_with(parent: libc::pid_t) -> std::io::Result<()> {
    // SAFETY: async-signal-safe calls with valid arguments.
    unsafe {
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if libc::getppid() != parent {
            return Err(std::io::Error::other(
                "launcher exited while starting a child",
            ));
        }
    }
    Ok(())
}

fn ifreq(name: &[u8]) -> libc::ifreq {
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, &src) in req.ifr_name.iter_mut().zip(name) {
        *dst = src as libc::c_char;
    }
    req
}

fn sockaddr(ip: Ipv4Addr) -> libc::sockaddr {
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from(ip).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: sockaddr_in and sockaddr have the same size; this is how the
    // ioctl interface takes an IPv4 address.
    unsafe { std::mem::transmute::<libc::sockaddr_in, libc::sockaddr>(sin) }
}

/// Bring `lo` up and give it 10.244.0.1/16 (as `lo:0`). On a loopback device
/// the prefix route is a *local* route, so every address of the range can be
/// bound, as 127.0.0.2 can. Plain ioctls: async-signal-safe, no iproute2 needed.
fn configure_lo() -> std::io::Result<()> {
    // SAFETY: socket/ioctl/close with valid, initialised arguments.
    unsafe {
        let s = libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0);
        if s < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let result = (|| {
            let mut up = ifreq(b"lo");
            up.ifr_ifru.ifru_flags = (libc::IFF_UP | libc::IFF_LOOPBACK | libc::IFF_RUNNING) as i16;
            if libc::ioctl(s, libc::SIOCSIFFLAGS, &up) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            let mut addr = ifreq(b"lo:0");
            addr.ifr_ifru.ifru_addr = sockaddr(NETWORK);
            if libc::ioctl(s, libc::SIOCSIFADDR, &addr) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            let mut mask = ifreq(b"lo:0");
            mask.ifr_ifru.ifru_netmask = sockaddr(NETMASK);
            if libc::ioctl(s, libc::SIOCSIFNETMASK, &mask) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })();
        libc::close(s);
        result
    }
}
