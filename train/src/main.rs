//! `nlcl-train`: train NLCL generators and export them to ONNX.
//!
//! ```text
//! nlcl-train train --rainy RAINY_DIR --clean CLEAN_DIR --out runs/a --width 16 --depth 4 \
//!     --unshuffle 2 --residual --crop 128 --steps 20000
//! nlcl-train export runs/a -o model.onnx --with-rain
//! ```

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "nlcl-train",
    version,
    about = "Train NLCL deraining generators and export them to ONNX"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once per process; boxing the large variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Train (or resume) a run on unpaired rainy and clean images.
    Train(nlcl_train::TrainArgs),
    /// Export a run's generator(s) as an ONNX model.
    Export(nlcl_train::ExportArgs),
    /// Score a checkpoint on paired folders (Y-PSNR/SSIM) and clean images (do no harm) with
    /// `nlcl eval`'s evaluator, without exporting it.
    Eval(nlcl_train::eval::EvalArgs),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Train(a) => nlcl_train::train(&a),
        Command::Export(a) => nlcl_train::export(&a),
        Command::Eval(a) => nlcl_train::eval::evaluate(&a),
    }
}
