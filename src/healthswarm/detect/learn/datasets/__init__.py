"""Labelled data sets in the layouts of the shipped corpora (CICFlowMeter, NSL-KDD, TON_IoT)."""

from healthswarm.detect.learn.datasets.base import LabelledData, layout_names, read_labelled, sniff

__all__ = ["LabelledData", "layout_names", "read_labelled", "sniff"]
