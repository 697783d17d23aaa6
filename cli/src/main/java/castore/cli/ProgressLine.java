package castore.cli;

import castore.ingest.ImportStats;
import castore.ingest.TreeSize;
import java.io.PrintStream;
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Supplier;

/**
 * The import progress display on stderr: files, bytes, rate and ETA. On a terminal one line is
 * redrawn four times a second; otherwise (--progress on a pipe) a line is printed every second.
 * Totals for the ETA come from a scan that runs beside the import; until it is done, no ETA.
 */
final class ProgressLine implements AutoCloseable {
    private final PrintStream err;
    private final boolean terminal;
    private final Supplier<ImportStats> stats;
    private final AtomicReference<TreeSize.Totals> totals = new AtomicReference<>();
    private final long start = System.nanoTime();
    private final Thread ticker;
    private final Thread scanner;
    private volatile boolean done;

    private ProgressLine(PrintStream err, boolean terminal, Supplier<ImportStats> stats, List<byte[]> paths) {
        this.err = err;
        this.terminal = terminal;
        this.stats = stats;
        this.scanner = Thread.ofPlatform().daemon().name("castore-progress-scan").start(() -> {
            long files = 0;
            long bytes = 0;
            for (byte[] p : paths) {
                TreeSize.Totals t = TreeSize.measure(p);
                files += t.files();
                bytes += t.bytes();
            }
            totals.set(new TreeSize.Totals(files, bytes));
        });
        this.ticker = Thread.ofPlatform().daemon().name("castore-progress").start(this::tick);
    }

    static ProgressLine start(PrintStream err, boolean terminal, Supplier<ImportStats> stats, List<byte[]> paths) {
        return new ProgressLine(err, terminal, stats, paths);
    }

    private void tick() {
        long period = terminal ? 250 : 1000;
        while (!done) {
            try {
                Thread.sleep(period);
            } catch (InterruptedException e) {
                return;
            }
            if (!done) {
                draw();
            }
        }
    }

    private synchronized void draw() {
        String line = render(stats.get(), totals.get(), (System.nanoTime() - start) / 1e9);
        if (terminal) {
            err.print("\r" + line + "\u001b[K");
        } else {
            err.println(line);
        }
        err.flush();
    }

    static String render(ImportStats s, TreeSize.Totals total, double seconds) {
        double rate = s.bytesRead() / Math.max(seconds, 1e-3);
        StringBuilder b = new StringBuilder();
        if (total == null) {
            b.append(String.format("%,d files  %s", s.files(), Nodes.bytes(s.bytesRead())));
        } else {
            b.append(String.format("%,d/%,d files  %s/%s", s.files(), total.files(), Nodes.bytes(s.bytesRead()),
                    Nodes.bytes(total.bytes())));
        }
        b.append("  ").append(Nodes.bytes((long) rate)).append("/s");
        if (total != null && rate > 0) {
            long eta = (long) Math.ceil(Math.max(0, total.bytes() - s.bytesRead()) / rate);
            b.append(String.format("  ETA %d:%02d", eta / 60, eta % 60));
        }
        return b.toString();
    }

    @Override
    public void close() {
        done = true;
        ticker.interrupt();
        scanner.interrupt();
        try {
            ticker.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        if (terminal) {
            synchronized (this) {
                err.print("\r\u001b[K");
                err.flush();
            }
        }
    }
}
