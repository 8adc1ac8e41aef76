#include "apps/feasible/output.h"

#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "feasible/version.h"

namespace feasible::app {

namespace fs = std::filesystem;

void prepare_output_dir(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    throw std::runtime_error("cannot create the output folder '" + dir + "': " + ec.message());
  }
  if (!fs::is_directory(dir, ec)) {
    throw std::runtime_error("the output path '" + dir + "' exists and is not a folder");
  }
  const std::string probe = (fs::path(dir) / ".feasible-write-test").string();
  std::FILE* f = std::fopen(probe.c_str(), "w");
  if (f == nullptr) {
    throw std::runtime_error("cannot write in the output folder '" + dir +
                             "': " + std::strerror(errno));
  }
  std::fclose(f);
  fs::remove(probe, ec);
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  file << text;
  file.close();
  if (!file) throw std::runtime_error("cannot write '" + path + "'");
}

// ---- CSV -------------------------------------------------------------------------------------

CsvWriter::CsvWriter(const std::string& path, const std::vector<std::string>& header)
    : path_(path), file_(path, std::ios::trunc) {
  if (!file_) throw std::runtime_error("cannot open '" + path + "' for writing");
  for (const auto& h : header) *this << h;
  end_row();
}

CsvWriter& CsvWriter::operator<<(const std::string& text) {
  if (row_started_) file_ << ',';
  row_started_ = true;
  if (text.find_first_of(",\"\n") == std::string::npos) {
    file_ << text;
  } else {
    file_ << '"';
    for (char ch : text) file_ << (ch == '"' ? std::string("\"\"") : std::string(1, ch));
    file_ << '"';
  }
  return *this;
}

CsvWriter& CsvWriter::operator<<(double value) {
  char buffer[40];
  std::snprintf(buffer, sizeof buffer, "%.17g", value);
  return *this << std::string(buffer);
}

CsvWriter& CsvWriter::operator<<(int64_t value) { return *this << std::to_string(value); }

void CsvWriter::end_row() {
  file_ << '\n';
  row_started_ = false;
}

void CsvWriter::close() {
  file_.close();
  if (!file_) throw std::runtime_error("cannot write '" + path_ + "'");
}

// ---- figures ---------------------------------------------------------------------------------

namespace {

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char ch : s) q += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
  return q + "'";
}

bool have_gnuplot() { return std::system("command -v gnuplot >/dev/null 2>&1") == 0; }

}  // namespace

FigureFile draw_figure(const std::string& dir, const std::string& name, const std::string& caption,
                       const std::string& body, int width, int height) {
  FigureFile figure{name, caption, false, ""};
  std::ostringstream script;
  script << "# " << caption << "\n# Drawn by `feasible reproduce`; run `gnuplot " << name
         << ".gp` in this folder to redraw.\n"
         << "set datafile separator ','\nset encoding utf8\n"
         << "set terminal pngcairo size " << width << "," << height
         << " enhanced font 'sans,11'\nset output '" << name << ".png'\n"
         << body << "\nunset output\nreset\nset datafile separator ','\n"
         << "set terminal svg size " << width << "," << height
         << " enhanced font 'sans,11' background rgb 'white'\nset output '" << name << ".svg'\n"
         << body << "\nunset output\n";
  try {
    write_file((fs::path(dir) / (name + ".gp")).string(), script.str());
  } catch (const std::exception& e) {
    figure.error = e.what();
    return figure;
  }
  if (!have_gnuplot()) {
    figure.error = "gnuplot is not installed (Debian package gnuplot-nox)";
    return figure;
  }
  const std::string log = name + ".gnuplot.log";
  const std::string command = "cd " + shell_quote(dir) + " && gnuplot " +
                              shell_quote(name + ".gp") + " >" + shell_quote(log) + " 2>&1";
  const int status = std::system(command.c_str());
  std::error_code ec;
  const bool png = fs::exists(fs::path(dir) / (name + ".png"), ec);
  const bool svg = fs::exists(fs::path(dir) / (name + ".svg"), ec);
  if (status != 0 || !png || !svg) {
    figure.error = "gnuplot failed (see " + log + ")";
    return figure;
  }
  fs::remove(fs::path(dir) / log, ec);
  figure.drawn = true;
  return figure;
}

// ---- Markdown --------------------------------------------------------------------------------

namespace {
// A table cell: '|' would end the cell, so it is escaped.
std::string cell(const std::string& text) {
  std::string out;
  for (char ch : text) {
    if (ch == '|') out += '\\';
    out += ch;
  }
  return out;
}
}  // namespace

std::string markdown_table(const std::vector<std::string>& header,
                           const std::vector<std::vector<std::string>>& rows) {
  std::ostringstream md;
  md << '|';
  for (const auto& h : header) md << ' ' << cell(h) << " |";
  md << "\n|";
  for (size_t i = 0; i < header.size(); ++i) md << (i == 0 ? "---|" : "---:|");
  md << '\n';
  for (const auto& row : rows) {
    md << '|';
    for (const auto& text : row) md << ' ' << cell(text) << " |";
    md << '\n';
  }
  return md.str();
}

std::string markdown_figure(const FigureFile& figure) {
  if (!figure.drawn) {
    return "*Figure `" + figure.name + "` was not drawn: " + figure.error +
           ". Its data and gnuplot script are in this folder.*\n";
  }
  return "![" + figure.caption + "](" + figure.name + ".png)\n\n*" + figure.caption + "* ([SVG](" +
         figure.name + ".svg), [gnuplot script](" + figure.name + ".gp))\n";
}

std::string fmt(double value, int digits) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*g", digits, value);
  return buffer;
}

std::string fixed(double value, int decimals) {
  if (!std::isfinite(value)) return fmt(value);
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f", decimals, value);
  return buffer;
}

std::string utc_now() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buffer;
}

nlohmann::json software_facts() {
  nlohmann::json facts;
  facts["feasible"] = kVersion;
#if defined(__clang__)
  facts["compiler"] = std::string("clang ") + __clang_version__;
#elif defined(__GNUC__)
  facts["compiler"] = std::string("g++ ") + __VERSION__;
#else
  facts["compiler"] = "unknown";
#endif
  utsname uts{};
  if (uname(&uts) == 0) {
    facts["os"] = std::string(uts.sysname) + " " + uts.release + " " + uts.machine;
  }
  facts["hardware_threads"] = std::thread::hardware_concurrency();
  return facts;
}

// ---- progress --------------------------------------------------------------------------------

Progress::Progress(bool quiet, bool tty) : quiet_(quiet), tty_(tty) {}

namespace {
std::string duration_text(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  char buffer[32];
  if (seconds < 60) {
    std::snprintf(buffer, sizeof buffer, "%.1fs", seconds);
  } else {
    std::snprintf(buffer, sizeof buffer, "%dm%02ds", static_cast<int>(seconds) / 60,
                  static_cast<int>(seconds) % 60);
  }
  return buffer;
}
double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}
}  // namespace

void Progress::start_experiment(const std::string& name, double total_units) {
  experiment_ = name;
  total_ = total_units;
  done_ = 0;
  runs_finished_ = 0;
  experiment_start_ = Clock::now();
  if (!quiet_ && !tty_) std::cerr << "[" << name << "] started\n";
}

void Progress::start_run(const std::string& label, int64_t iterations) {
  run_ = label;
  iteration_ = 0;
  iterations_ = iterations;
  run_start_ = Clock::now();
  redraw(true);
}

void Progress::update(int64_t iteration) {
  if (iteration > iteration_) {
    done_ += static_cast<double>(iteration - iteration_);
    iteration_ = iteration;
  }
  redraw(false);
}

void Progress::finish_run(const std::string& summary) {
  update(iterations_);
  ++runs_finished_;
  if (quiet_) return;
  if (tty_) {
    redraw(true);
  } else {
    std::cerr << "[" << experiment_ << "] " << run_ << ": " << summary << " ("
              << duration_text(seconds_since(run_start_)) << ")\n";
  }
}

void Progress::finish_experiment(const std::string& summary) {
  if (quiet_) return;
  clear_line();
  std::cerr << "[" << experiment_ << "] done in " << duration_text(seconds_since(experiment_start_))
            << ": " << summary << "\n";
}

void Progress::iteration_line(int64_t iteration, const std::string& detail) {
  update(iteration);
  if (quiet_ || tty_) return;
  const double fraction = total_ > 0 ? std::min(1.0, done_ / total_) : 0.0;
  const double elapsed = seconds_since(experiment_start_);
  const double eta = fraction > 0 ? elapsed * (1 - fraction) / fraction : -1;
  std::cerr << "[" << experiment_ << "] " << run_ << " " << iteration << "/" << iterations_ << ": "
            << detail << " (ETA " << duration_text(eta) << ")\n";
}

void Progress::note(const std::string& line) {
  if (quiet_) return;
  clear_line();
  std::cerr << line << "\n";
  redraw(true);
}

void Progress::clear_line() {
  if (tty_ && drawn_) {
    std::cerr << "\r\033[2K";
    drawn_ = false;
  }
}

void Progress::redraw(bool force) {
  if (quiet_ || !tty_) return;
  const auto now = Clock::now();
  if (!force && drawn_ && std::chrono::duration<double>(now - last_draw_).count() < 0.1) return;
  last_draw_ = now;
  const double fraction = total_ > 0 ? std::min(1.0, done_ / total_) : 0.0;
  const int width = 24;
  const int filled = static_cast<int>(fraction * width);
  std::string bar(static_cast<size_t>(filled), '#');
  bar.append(static_cast<size_t>(width - filled), '.');
  const double elapsed = seconds_since(experiment_start_);
  const double eta = fraction > 0 ? elapsed * (1 - fraction) / fraction : -1;
  std::cerr << "\r\033[2K[" << experiment_ << "] [" << bar << "] "
            << static_cast<int>(fraction * 100) << "% " << run_ << " it " << iteration_ << "/"
            << iterations_ << " ETA " << duration_text(eta) << std::flush;
  drawn_ = true;
}

}  // namespace feasible::app
