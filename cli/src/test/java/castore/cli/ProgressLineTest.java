package castore.cli;

import static org.assertj.core.api.Assertions.assertThat;

import castore.ingest.CopyStats;
import org.junit.jupiter.api.Test;

class ProgressLineTest {
    @Test
    void beforeTheTotalsAreKnownThereIsNoEta() {
        assertThat(ProgressLine.render(new ProgressLine.Progress("files", 1234, 50L << 20, -1, -1), 2.0))
                .isEqualTo("1,234 files  50.0 MiB  25.0 MiB/s");
    }

    @Test
    void withTotalsFilesBytesRateAndEta() {
        assertThat(ProgressLine.render(new ProgressLine.Progress("files", 1000, 100L << 20, 52000, 1100L << 20), 4.0))
                .isEqualTo("1,000/52,000 files  100.0 MiB/1.1 GiB  25.0 MiB/s  ETA 0:40");
        assertThat(ProgressLine.render(new ProgressLine.Progress("blobs", 0, 0, 5, 5), 0.1))
                .isEqualTo("0/5 blobs  0 B/5 B  0 B/s");
    }

    @Test
    void aCopyShowsBlobsSentOfThoseTheDestinationLacks() {
        assertThat(ProgressLine.render(ProgressLine.copyProgress(new CopyStats(10, 0, 500, 0, 0, 0, 0, 0)), 1.0))
                .isEqualTo("0 blobs  0 B  0 B/s");
        assertThat(ProgressLine.render(ProgressLine.copyProgress(new CopyStats(10, 0, 500, 400, 100, 40L << 20, 10L << 20, 0)), 2.0))
                .isEqualTo("100/400 blobs  10.0 MiB/40.0 MiB  5.0 MiB/s  ETA 0:06");
    }
}
