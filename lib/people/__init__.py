"""People in video frames: per-frame detections (box, COCO-17 keypoints, mask) and their tracks.

``types`` (Detection, Track, the backend protocol) is below everything else; ``blazepose`` runs BlazePose's
detector and landmark models (LiteRT, the models of the mediapipe wheel) on regions of a frame (``roi``);
``blazepose_backend`` finds and follows every person with them (the offline default);
``detection_file`` and ``onnx_backend`` read the user's own detections or run the user's ONNX models;
``tracking`` links detections into tracks; ``build`` makes the backend a config names. The demo and the
synthetic data's render-and-detect use this package; of the rest of the project it imports only the
ground floor (``lib.errors``).
"""
