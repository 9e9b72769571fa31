//! Reading a per-request CSV (`--requests-csv`) back: the measurements a simulator's
//! service-time model is calibrated from. Files of every version read: columns are found by
//! name, and those added later (queue wait; the token columns of OpenAI-compatible runs) are
//! optional or ignored.

use std::path::Path;

/// One successful request of a per-request CSV, as the client and the server measured it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measured {
    /// Latency from the scheduled send to the answer, seconds.
    pub latency_s: f64,
    /// Service time the server reported, seconds.
    pub service_s: f64,
    /// Queue wait the server reported, seconds (`None`: the server did not say).
    pub queue_wait_s: Option<f64>,
}

impl Measured {
    /// The part of the latency spent outside the replica's queue and workers (network, proxies,
    /// the client), when the server reported its queue wait.
    pub fn outside_s(&self) -> Option<f64> {
        self.queue_wait_s
            .map(|w| (self.latency_s - w - self.service_s).max(0.0))
    }
}

/// Why a per-request CSV cannot be read back: the file and line are part of every message, so
/// that the user can find the bad row.
#[derive(Debug, thiserror::Error)]
pub enum ReadMeasuredError {
    /// The file cannot be opened or a row cannot be read as CSV.
    #[error("{at}: {cause}")]
    Csv {
        /// `file` or `file:line`.
        at: String,
        /// The CSV reader's answer.
        cause: csv::Error,
    },
    /// A column the calibration needs is missing.
    #[error("{file}: no {column:?} column")]
    MissingColumn {
        /// The file.
        file: String,
        /// The column's name.
        column: String,
    },
    /// A cell that should hold milliseconds holds something else.
    #[error("{at}: {column}: expected milliseconds, found {text:?}")]
    NotMilliseconds {
        /// `file:line`.
        at: String,
        /// The column's name.
        column: String,
        /// The cell as written.
        text: String,
    },
    /// A successful request without its latency or service time.
    #[error("{at}: latency_ms and service_ms are required")]
    MissingTimes {
        /// `file:line`.
        at: String,
    },
}

/// The successful (2xx) requests of a per-request CSV (`--requests-csv`): the measurements a
/// simulator's service-time model is calibrated from.
pub fn read_measured(path: &Path) -> Result<Vec<Measured>, ReadMeasuredError> {
    let at = |line: usize| format!("{}:{line}", path.display());
    let mut reader = csv::Reader::from_path(path).map_err(|cause| ReadMeasuredError::Csv {
        at: path.display().to_string(),
        cause,
    })?;
    let headers = reader
        .headers()
        .map_err(|cause| ReadMeasuredError::Csv { at: at(1), cause })?
        .clone();
    let column = |name: &str| headers.iter().position(|h| h == name);
    let need = |name: &str| {
        column(name).ok_or_else(|| ReadMeasuredError::MissingColumn {
            file: path.display().to_string(),
            column: name.to_string(),
        })
    };
    let (status_at, latency_at, service_at) =
        (need("status")?, need("latency_ms")?, need("service_ms")?);
    let wait_at = column("queue_wait_ms");
    let mut out = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let record = record.map_err(|cause| ReadMeasuredError::Csv {
            at: at(line),
            cause,
        })?;
        let ms = |index: usize, name: &str| -> Result<Option<f64>, ReadMeasuredError> {
            match record.get(index).map(str::trim) {
                None | Some("") => Ok(None),
                Some(text) => text.parse::<f64>().map(|v| Some(v / 1000.0)).map_err(|_| {
                    ReadMeasuredError::NotMilliseconds {
                        at: at(line),
                        column: name.to_string(),
                        text: text.to_string(),
                    }
                }),
            }
        };
        if !record.get(status_at).is_some_and(|s| s.starts_with('2')) {
            continue;
        }
        let (Some(latency_s), Some(service_s)) =
            (ms(latency_at, "latency_ms")?, ms(service_at, "service_ms")?)
        else {
            return Err(ReadMeasuredError::MissingTimes { at: at(line) });
        };
        let queue_wait_s = match wait_at {
            Some(w) => ms(w, "queue_wait_ms")?,
            None => None,
        };
        out.push(Measured {
            latency_s,
            service_s,
            queue_wait_s,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_and_token_files_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let files = [
            // Before queue_wait_ms.
            "timestamp_s,latency_ms,status,service_ms,error\n0.5,12.0,200,10.0,\n0.7,1.0,503,1.0,\n",
            // Before the token columns.
            "timestamp_s,latency_ms,status,service_ms,error,queue_wait_ms\n\
             0.5,12.0,200,10.0,,1.5\n0.7,1.0,503,1.0,,\n",
            // An OpenAI-compatible run.
            "timestamp_s,latency_ms,status,service_ms,error,queue_wait_ms,ttft_ms,itl_mean_ms,output_tokens,input_tokens\n\
             0.5,12.0,200,10.0,,1.5,3.0,0.5,20,200\n0.7,1.0,503,1.0,,,,,0,200\n",
        ];
        for (i, text) in files.iter().enumerate() {
            let path = dir.path().join(format!("{i}.csv"));
            std::fs::write(&path, text).unwrap();
            let m = read_measured(&path).unwrap();
            assert_eq!(m.len(), 1, "{text}");
            assert!((m[0].latency_s - 0.012).abs() < 1e-12);
            assert!((m[0].service_s - 0.010).abs() < 1e-12);
            assert_eq!(m[0].queue_wait_s.is_some(), i > 0);
        }
    }
}
