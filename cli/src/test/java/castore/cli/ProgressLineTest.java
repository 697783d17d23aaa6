package castore.cli;

import static org.assertj.core.api.Assertions.assertThat;

import castore.ingest.ImportStats;
import castore.ingest.TreeSize;
import org.junit.jupiter.api.Test;

class ProgressLineTest {
    @Test
    void beforeTheTotalsAreKnownThereIsNoEta() {
        assertThat(ProgressLine.render(new ImportStats(1234, 10, 0, 50L << 20, 0), null, 2.0))
                .isEqualTo("1,234 files  50.0 MiB  25.0 MiB/s");
    }

    @Test
    void withTotalsFilesBytesRateAndEta() {
        assertThat(ProgressLine.render(new ImportStats(1000, 10, 0, 100L << 20, 0), new TreeSize.Totals(52000, 1100L << 20), 4.0))
                .isEqualTo("1,000/52,000 files  100.0 MiB/1.1 GiB  25.0 MiB/s  ETA 0:40");
        assertThat(ProgressLine.render(new ImportStats(0, 0, 0, 0, 0), new TreeSize.Totals(5, 5), 0.1))
                .isEqualTo("0/5 files  0 B/5 B  0 B/s");
    }
}
