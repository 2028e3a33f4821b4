//! The Rust side of the Python interop tests: `rust_peer NAME` meets a
//! Python process over the named objects `NAME.q` (ByteQueue: the Python
//! Queue's put_bytes/get_bytes), `NAME.v` (Value<i32>: Python's Value('i')),
//! `NAME.d` (Array<f64>: Array('d')) and `NAME.p` (Pipe: send_bytes/recv_bytes).
use std::time::Duration;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let name = std::env::args().nth(1).ok_or("usage: rust_peer NAME")?;
    let t = Duration::from_secs(30);
    // Pipe end B, taken first: the Python side sends once the queue answered.
    let p = ringshm::Pipe::open(&format!("{name}.p"))?;
    // Queue: upper-case every message until "end", answering on the same queue's twin.
    let q = ringshm::ByteQueue::open(&format!("{name}.q"))?;
    let r = ringshm::ByteQueue::open(&format!("{name}.r"))?;
    loop {
        let m = q.get_timeout(t)?;
        if m == b"end" {
            break;
        }
        r.put_timeout(&m.to_ascii_uppercase(), t)?;
    }
    // Value<i32> and Array<f64>.
    let v = ringshm::Value::<i32>::open(&format!("{name}.v"))?;
    v.fetch_add(5);
    let d = ringshm::Array::<f64>::open(&format!("{name}.d"))?;
    let sum: f64 = d.to_vec().iter().sum();
    d.set(0, sum);
    // Pipe: echo one message reversed.
    let mut m = p.recv_bytes()?;
    m.reverse();
    p.send_bytes(&m)?;
    Ok(())
}
