//! A child's output read line by line on a thread of its own (read to its end, so the child
//! never writes into a closed pipe), for tests that act once the child printed something.

use std::io::{BufRead, BufReader, Read};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub struct Lines {
    rx: mpsc::Receiver<String>,
    reader: Option<JoinHandle<()>>,
    /// Every line received so far, in order.
    pub seen: Vec<String>,
}

impl Lines {
    /// Starts reading `output` (a child's `stderr` or `stdout`, taken from it).
    pub fn of(output: impl Read + Send + 'static) -> Lines {
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(output).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Lines {
            rx,
            reader: Some(reader),
            seen: Vec::new(),
        }
    }

    /// Waits for a line that satisfies `stop`, for at most `within`; `true` if one came
    /// (every line read is kept in [`Lines::seen`]).
    pub fn until(&mut self, within: Duration, stop: impl Fn(&str) -> bool) -> bool {
        let deadline = Instant::now() + within;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.rx.recv_timeout(left) {
                Ok(line) => {
                    let hit = stop(&line);
                    self.seen.push(line);
                    if hit {
                        return true;
                    }
                }
                Err(_) => return false,
            }
        }
        false
    }

    /// Reads the rest once the child is gone (its output closed), and returns every line.
    pub fn finish(mut self) -> Vec<String> {
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        self.seen.extend(self.rx.try_iter());
        std::mem::take(&mut self.seen)
    }
}
