from decimal import Decimal

import pytest
from hypothesis import given

from bankkpi import Band, BandSet
from bankkpi.exceptions import (
    AmbiguousInputError,
    InvalidValueError,
    MissingDataError,
    ValidationErrorGroup,
)

from .strategies import contiguous_band_sets, scores


class TestBand:
    def test_han_inclusive_and_buhan_exclusive(self):
        """ "90分(含)以上" includes 90; "98分以下(不含98分)" excludes 98."""
        at_least_90 = Band.interval("优秀", "[90, +inf)")
        below_98 = Band.interval("未达标", "(-inf, 98)")
        assert at_least_90.contains(Decimal(90))
        assert not at_least_90.contains(Decimal("89.99"))
        assert below_98.contains(Decimal("97.99"))
        assert not below_98.contains(Decimal(98))
        assert at_least_90.describe("zh") == "90(含)以上"
        assert below_98.describe("zh") == "98以下(不含98)"

    def test_describe(self):
        band = Band.interval("待改进", "[80, 85)")
        assert band.describe("zh") == "80(含)至85(不含)"
        assert band.describe("en") == "[80, 85)"
        assert Band.interval("x", "(90, +inf)").describe("zh") == "90以上(不含90)"
        assert Band.interval("x", "(-inf, 60]").describe("zh") == "60(含)以下"

    def test_inclusivity_must_be_stated(self):
        with pytest.raises(AmbiguousInputError, match="'low_inclusive' must be stated"):
            Band("合格", 85, 100, high_inclusive=True)

    @pytest.mark.parametrize("notation", ["90, 100", "[90; 100]", "[-inf, 3)", "[1, +inf]"])
    def test_bad_notation(self, notation):
        with pytest.raises(InvalidValueError):
            Band.interval("x", notation)

    def test_empty_band_refused(self):
        with pytest.raises(InvalidValueError, match="non-empty"):
            Band.interval("x", "[90, 90)")
        assert Band.interval("point", "[90, 90]").contains(Decimal(90))


class TestBandSet:
    def scheme_b(self):
        return BandSet(
            [
                Band.interval("<80 扣减更多", "[0, 80)"),
                Band.interval("<85 扣减绩效", "[80, 85)"),
                Band.interval("合格", "[85, 100]"),
            ],
            scale=(0, 100),
        )

    @pytest.mark.parametrize(
        ("score", "label"),
        [
            ("0", "<80 扣减更多"),
            ("79.99", "<80 扣减更多"),
            ("80", "<85 扣减绩效"),
            ("84.99", "<85 扣减绩效"),
            ("85", "合格"),
            ("100", "合格"),
        ],
    )
    def test_scheme_b_bounds(self, score, label):
        assert self.scheme_b().classify(Decimal(score)).label == label

    def test_overlap_and_gap_and_coverage_all_reported(self):
        with pytest.raises(ValidationErrorGroup) as info:
            BandSet(
                [
                    Band.interval("a", "[10, 50]"),
                    Band.interval("b", "[50, 60)"),
                    Band.interval("c", "(60, 90)"),
                ],
                scale=(0, 100),
            )
        text = str(info.value)
        assert "must not overlap" in text
        assert "gap" in text
        assert "low end 0" in text
        assert "high end 100" in text

    def test_catch_all_fills_gaps(self):
        bands = BandSet([Band.interval("top", "[98, +inf)")], catch_all="其他")
        assert bands.classify(Decimal(50)).label == "其他"

    def test_unbounded_line_needs_infinite_ends(self):
        BandSet([Band.interval("low", "(-inf, 60)"), Band.interval("high", "[60, +inf)")])
        with pytest.raises(ValidationErrorGroup):
            BandSet([Band.interval("low", "[0, 60)"), Band.interval("high", "[60, +inf)")])

    def test_duplicate_labels(self):
        with pytest.raises(ValidationErrorGroup) as info:
            BandSet([Band.interval("a", "(-inf, 60)"), Band.interval("a", "[60, +inf)")])
        assert "must have unique labels: 'a'" in str(info.value)

    def test_out_of_scale_value_has_no_band(self):
        with pytest.raises(MissingDataError):
            self.scheme_b().classify(Decimal(101))

    @given(contiguous_band_sets(), scores())
    def test_classification_total_and_unique_over_scale(self, bands, value):
        containing = [b for b in bands.bands if b.contains(value)]
        assert len(containing) == 1
        assert bands.classify(value) == containing[0]
