package castore.cli;

import castore.ingest.CopyStats;
import castore.ingest.ImportStats;
import castore.ingest.TreeSize;
import java.io.PrintStream;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Supplier;

/**
 * The progress display of import and copy on stderr: items, bytes, rate and ETA. On a terminal
 * one line is redrawn four times a second; otherwise (--progress on a pipe) a line is printed
 * every second. Until the totals are known (an import's scan that runs beside it, a copy's
 * question to the destination), no ETA.
 */
final class ProgressLine implements AutoCloseable {
    /** What a command has done: {@code items} (a plural noun) and bytes, and their totals, negative until known. */
    record Progress(String items, long done, long bytes, long totalItems, long totalBytes) {
        boolean totalsKnown() {
            return totalItems >= 0 && totalBytes >= 0;
        }
    }

    private final PrintStream err;
    private final boolean terminal;
    private final Supplier<Progress> progress;
    private final Runnable stop;
    private final long start = System.nanoTime();
    private final Thread ticker;
    private volatile boolean done;

    private ProgressLine(PrintStream err, boolean terminal, Supplier<Progress> progress, Runnable stop) {
        this.err = err;
        this.terminal = terminal;
        this.progress = progress;
        this.stop = stop;
        this.ticker = Thread.ofPlatform().daemon().name("castore-progress").start(this::tick);
    }

    /** An import's: files and bytes read, of the totals a scan of {@code paths} finds beside it. */
    static ProgressLine forImport(PrintStream err, boolean terminal, Supplier<ImportStats> stats, List<byte[]> paths) {
        AtomicReference<TreeSize.Totals> totals = new AtomicReference<>();
        Thread scanner = Thread.ofPlatform().daemon().name("castore-progress-scan").start(() -> {
            long files = 0;
            long bytes = 0;
            for (byte[] p : paths) {
                TreeSize.Totals t = TreeSize.measure(p);
                files += t.files();
                bytes += t.bytes();
            }
            totals.set(new TreeSize.Totals(files, bytes));
        });
        return new ProgressLine(err, terminal, () -> {
            ImportStats s = stats.get();
            TreeSize.Totals t = totals.get();
            return new Progress("files", s.files(), s.bytesRead(), t == null ? -1 : t.files(), t == null ? -1 : t.bytes());
        }, scanner::interrupt);
    }

    /** A copy's: blobs and bytes sent, of those the destination lacks (known for each tree once it was asked). */
    static ProgressLine forCopy(PrintStream err, boolean terminal, Supplier<CopyStats> stats) {
        return new ProgressLine(err, terminal, () -> copyProgress(stats.get()), () -> {
        });
    }

    static Progress copyProgress(CopyStats s) {
        boolean asked = s.blobsToSend() > 0; // no total before the destination's first answer
        return new Progress("blobs", s.blobsSent(), s.bytesSent(), asked ? s.blobsToSend() : -1, asked ? s.bytesToSend() : -1);
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
        String line = render(progress.get(), (System.nanoTime() - start) / 1e9);
        if (terminal) {
            err.print("\r" + line + "\u001b[K");
        } else {
            err.println(line);
        }
        err.flush();
    }

    static String render(Progress p, double seconds) {
        double rate = p.bytes() / Math.max(seconds, 1e-3);
        StringBuilder b = new StringBuilder();
        if (!p.totalsKnown()) {
            b.append(String.format(Locale.ROOT, "%,d %s  %s", p.done(), p.items(), Nodes.bytes(p.bytes())));
        } else {
            b.append(String.format(Locale.ROOT, "%,d/%,d %s  %s/%s", p.done(), p.totalItems(), p.items(), Nodes.bytes(p.bytes()),
                    Nodes.bytes(p.totalBytes())));
        }
        b.append("  ").append(Nodes.bytes((long) rate)).append("/s");
        if (p.totalsKnown() && rate > 0) {
            long eta = (long) Math.ceil(Math.max(0, p.totalBytes() - p.bytes()) / rate);
            b.append(String.format(Locale.ROOT, "  ETA %d:%02d", eta / 60, eta % 60));
        }
        return b.toString();
    }

    @Override
    public void close() {
        done = true;
        ticker.interrupt();
        stop.run();
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
