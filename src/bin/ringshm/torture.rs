//! `ringshm torture`: crash torture (stub).

use crate::Failure;

pub const WORKER_CMD: &str = "__torture-worker";

pub fn run(_args: &[String]) -> Result<(), Failure> {
    Ok(())
}

pub fn worker(_args: &[String]) -> Result<(), Failure> {
    Ok(())
}
