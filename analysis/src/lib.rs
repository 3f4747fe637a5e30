//! Analysis of benchmark results: the paper's figures side by side with ours.
//!
//! Reads results directories written by `loadgen simulate|local|matrix` (`manifest.json`,
//! `summary.csv`, `hdr/*.hlog`), compares them with the plotted data of the Steward paper
//! (DSN 2006 Figs. 1–8, embedded from `analysis/paper/`), and writes Markdown and CSV tables,
//! a fidelity summary and SVG/PNG plots. It also compares two results directories for
//! regressions.
//!
//! Modules, one job each:
//! * [`results`]: load and merge results directories;
//! * [`hdr`]: read HDR interval logs, percentiles and CDFs;
//! * [`experiment`]: map topologies to the paper's experiments, label modes and series;
//! * [`paper`]: the paper's embedded figure data;
//! * [`figures`]: our runs arranged as the paper's figure curves;
//! * [`fidelity`]: per-figure fidelity and Steward/PBFT peak ratios;
//! * [`table`]: CSV and Markdown tables;
//! * [`timeseries`]: replica metrics and fault events over time, throughput over time;
//! * [`plots`]: line charts to SVG, rasterized to PNG with resvg; finding their font;
//! * [`report`]: the `report` command;
//! * [`compare`]: the `compare` command.

#![warn(missing_docs)]

pub mod compare;
pub mod experiment;
pub mod fidelity;
pub mod figures;
pub mod hdr;
pub mod paper;
pub mod plots;
pub mod report;
pub mod results;
pub mod table;
pub mod timeseries;
