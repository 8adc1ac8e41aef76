#pragma once
/// \file output.h
/// What the program writes: output folders, CSV series, gnuplot figures, Markdown tables,
/// progress on stderr. Torch-free.

#include <chrono>
#include <cstdint>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace feasible::app {

/// Creates `dir` (and its parents) and checks that a file can be written in it. Throws
/// std::runtime_error naming the folder and the reason otherwise.
void prepare_output_dir(const std::string& dir);

/// Writes `text` to `path` (replacing it). Throws std::runtime_error naming the file on failure.
void write_file(const std::string& path, const std::string& text);

/// A CSV file written row by row (RFC 4180 quoting for text; numbers with 17 significant digits).
class CsvWriter {
 public:
  /// Opens `path` and writes the header. Throws std::runtime_error naming the file on failure.
  CsvWriter(const std::string& path, const std::vector<std::string>& header);
  /// One cell of the current row.
  CsvWriter& operator<<(const std::string& text);
  CsvWriter& operator<<(const char* text) { return *this << std::string(text); }
  CsvWriter& operator<<(double value);
  CsvWriter& operator<<(int64_t value);
  CsvWriter& operator<<(int value) { return *this << static_cast<int64_t>(value); }
  /// Ends the current row.
  void end_row();
  /// Flushes and closes; throws on a write error.
  void close();

 private:
  std::string path_;
  std::ofstream file_;
  bool row_started_ = false;
};

/// A figure drawn by gnuplot as PNG and SVG.
struct FigureFile {
  std::string name;     ///< base name, e.g. "figure3"
  std::string caption;  ///< one sentence
  bool drawn = false;   ///< whether gnuplot made both files
  std::string error;    ///< why not, when !drawn
};

/// Writes `dir/<name>.gp` with `body` (gnuplot commands that read data files relative to `dir`)
/// and runs gnuplot in `dir` twice: PNG (pngcairo, `width` x `height` pixels) and SVG. Never
/// throws for a missing or failing gnuplot: the result says why (the report then says so).
FigureFile draw_figure(const std::string& dir, const std::string& name, const std::string& caption,
                       const std::string& body, int width = 900, int height = 560);

/// A Markdown table: header row, alignment row, rows.
std::string markdown_table(const std::vector<std::string>& header,
                           const std::vector<std::vector<std::string>>& rows);

/// A Markdown block that embeds the figure's PNG and links its SVG (or says why it is missing).
std::string markdown_figure(const FigureFile& figure);

/// `value` with `digits` significant digits ("%.*g"); "nan"/"inf" spelt out.
std::string fmt(double value, int digits = 4);
/// `value` with `decimals` digits after the point ("%.*f").
std::string fixed(double value, int decimals);

/// The current UTC time as ISO 8601 ("2026-11-28T20:45:24Z").
std::string utc_now();

/// Software and machine facts for results.json: feasible's version, the compiler, the OS, the
/// number of hardware threads. The experiment adds LibTorch's.
nlohmann::json software_facts();

/// Progress of long runs on stderr: with a terminal, one redrawn line with a bar, the current
/// run, its iteration and the ETA of the experiment; otherwise one line per finished run. Quiet:
/// nothing.
class Progress {
 public:
  /// \param quiet  print nothing.  \param tty  stderr is a terminal (redraw a bar).
  Progress(bool quiet, bool tty);
  /// Starts an experiment whose runs add up to `total_units` (e.g. iterations).
  void start_experiment(const std::string& name, double total_units);
  /// Starts a run (a label such as "nuPI eps=0.3").
  void start_run(const std::string& label, int64_t iterations);
  /// Reports that the current run reached `iteration` (adds the units done since the last call).
  void update(int64_t iteration);
  /// Ends the current run; `summary` (e.g. "x=0.3047") goes on its line.
  void finish_run(const std::string& summary);
  /// Ends the experiment with a one-line summary.
  void finish_experiment(const std::string& summary);
  /// A free line (e.g. a warning), printed even when a bar is shown (not when quiet).
  void note(const std::string& line);
  /// For long iterations (an epoch): when stderr is not a terminal (a log, CI), one line with
  /// the run, `iteration`/total, `detail` and the experiment's ETA; on a terminal the bar shows
  /// the same. Nothing when quiet. Also counts the progress, as update().
  void iteration_line(int64_t iteration, const std::string& detail);

 private:
  using Clock = std::chrono::steady_clock;
  void redraw(bool force);
  void clear_line();
  bool quiet_;
  bool tty_;
  std::string experiment_;
  std::string run_;
  double total_ = 0;
  double done_ = 0;
  int64_t iteration_ = 0;
  int64_t iterations_ = 0;
  int64_t runs_finished_ = 0;
  Clock::time_point experiment_start_;
  Clock::time_point run_start_;
  Clock::time_point last_draw_;
  bool drawn_ = false;
};

}  // namespace feasible::app
